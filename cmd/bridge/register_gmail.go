package main

// gmailRegisterHelp explains how to make the Google Cloud OAuth client a
// Gmail account signs in with (docs/google-facts.md); none is built in.
func gmailRegisterHelp(email string) string {
	return `bridge needs a Google OAuth client (a client id and secret) to sign in to Gmail; none is built in.
Make one (free, a few minutes) at https://console.cloud.google.com:
  1. Create a project, then APIs & Services > Library > Gmail API > Enable.
  2. Google Auth Platform (OAuth consent screen): user type External (Internal for a Workspace-only app);
     under Data Access add the scope https://mail.google.com/.
  3. Audience: while the publishing status is "Testing", add your address under Test users, and know that
     Google ends the sign-in 7 days after each login; "Publish app" (In production) avoids that. An app
     only you use may stay unverified: Google shows a warning at sign-in that you can pass.
  4. Clients > Create client > Application type "Desktop app"; copy the client id and the client secret.
Then run:
  bridge login ` + email + ` --provider gmail --client-id <client id> --client-secret <client secret>
`
}
