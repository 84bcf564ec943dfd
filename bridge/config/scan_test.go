package config

import "testing"

func TestScanTOMLFindsLinesPastTrickyValues(t *testing.T) {
	text := `a = """
[not_a_table]
b = 1 """
c = [ "x", # comment with ] and [
  'y', { k = "}" },
]
d = 'lit # not a comment'   # real comment
[t]
"quoted.key" = 1
e.f = "dotted"
[[arr]]
g = 1979-05-27 07:32:00
[[arr]]
g = 2
`
	lines := keyLines(text)
	for k, want := range map[string]int{
		"a": 1, "c": 4, "d": 7, "t": 8, "t.quoted.key": 9, "t.e.f": 10, "t.e": 10,
		"arr[0]": 11, "arr[0].g": 12, "arr[1]": 13, "arr[1].g": 14,
	} {
		if lines[k] != want {
			t.Errorf("line of %s = %d, want %d", k, lines[k], want)
		}
	}
	if _, ok := lines["not_a_table"]; ok {
		t.Error("text inside a multi-line string was taken for a table")
	}
	if _, ok := lines["b"]; ok {
		t.Error("text inside a multi-line string was taken for a key")
	}
	if len(lines) != 11 {
		t.Errorf("found %d paths, want 11: %v", len(lines), lines)
	}
}

// FuzzScanTOML checks that the scanner never panics and that what it finds
// lies inside the text, in order, for any text.
func FuzzScanTOML(f *testing.F) {
	f.Add(handWritten)
	f.Add("a = \"\"\"x\\\"\"\"\"\n[\"q.k\"]\nb = [1, {c = 'd'}]\n")
	f.Add("k = 'unterminated\n[[a]]\n\"x\\")
	f.Fuzz(func(t *testing.T, s string) {
		prev := 0
		for _, it := range scanTOML(s) {
			if it.start < prev || it.end < it.start || it.end > len(s) || it.line < 1 {
				t.Fatalf("item %+v out of order or range (prev end %d, len %d)", it, prev, len(s))
			}
			if !it.header && (it.valStart < it.start || it.valEnd < it.valStart || it.valEnd > it.end) {
				t.Fatalf("value of %+v out of range", it)
			}
			prev = it.end
		}
	})
}
