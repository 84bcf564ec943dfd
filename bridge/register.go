package bridge

func init() {
	frontEnds[IMAP] = func(b *Bridge, o FrontOptions) frontEnd { return NewIMAPServer(b, o) }
	frontEnds[POP3] = func(b *Bridge, o FrontOptions) frontEnd { return NewPOP3Server(b, o) }
	frontEnds[SMTP] = func(b *Bridge, o FrontOptions) frontEnd { return NewSMTPServer(b, o) }
}
