package main

import (
	"fmt"
	"io"
)

// sentFolder names the folder where a provider keeps what its SMTP server
// sent, for the providers that do: Microsoft 365 and Outlook.com save each
// message submitted by SMTP in Sent Items (docs/microsoft-facts.md §1.4),
// Gmail in Sent Mail (docs/google-facts.md §6).
var sentFolder = map[string]string{
	"microsoft": "Sent Items",
	"gmail":     "Sent Mail ([Gmail]/Sent Mail)",
}

// printSentCopyNote tells, once at sign-in, which client setting to turn
// off so that sent mail does not appear twice: the provider files a copy
// itself, and a client that also uploads one to the Sent folder over IMAP
// makes a duplicate. Nothing is printed for a provider that does not.
func printSentCopyNote(w io.Writer, provider string) {
	if provider == "" {
		provider = "microsoft"
	}
	folder, ok := sentFolder[provider]
	if !ok {
		return
	}
	fmt.Fprintf(w, `
Sent mail: the server saves a copy of every message sent through SMTP in %s
by itself. Turn off the mail client's own copy to the server, or each message
appears there twice:
  Thunderbird  Account Settings > Copies & Folders > untick "Place a copy in"
  Apple Mail   Settings > Accounts > Mailbox Behaviors > untick "Store sent messages on the server"
  mutt         set record = "" (or set copy = no)
  others       the setting that saves sent messages to the server's Sent folder
`, folder)
}
