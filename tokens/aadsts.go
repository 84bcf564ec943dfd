package tokens

// Meaning returns a short phrase for an AADSTS code, or "" when unknown.
// The full table (cause and fix) is in the diagnosis package.
func Meaning(code int) string {
	return aadstsMeaning[code]
}

var aadstsMeaning = map[int]string{}
