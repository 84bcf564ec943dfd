package config

import (
	"strconv"
	"strings"
)

// tomlItem is a table header or a key/value pair found by scanTOML.
type tomlItem struct {
	header bool     // a [table] or [[table]] line
	array  bool     // [[table]]
	key    []string // the header's table key, or the (dotted) key
	// path names the item as errors do: "listen", "account[1]",
	// "account[1].client_id".
	path string
	line int // 1-based line where the item starts
	// start is the offset of the item's first line; end is just past the
	// newline of its last line (a value may span lines).
	start, end int
	// valStart and valEnd delimit a key's value.
	valStart, valEnd int
}

// keyLines maps each key path in the text to its line, including the
// tables that dotted keys create.
func keyLines(text string) map[string]int {
	lines := map[string]int{}
	for _, it := range scanTOML(text) {
		lines[it.path] = it.line
		if !it.header {
			p := it.path
			for range len(it.key) - 1 {
				p = p[:strings.LastIndexByte(p, '.')]
				if _, ok := lines[p]; !ok {
					lines[p] = it.line
				}
			}
		}
	}
	return lines
}

// scanTOML finds the headers and key/value pairs of a TOML text that the
// decoder has accepted. It only needs to find where things are, so it is
// lenient, and it always moves forward.
func scanTOML(s string) []tomlItem {
	var items []tomlItem
	counts := map[string]int{}
	table := ""
	for pos := 0; pos < len(s); {
		start := pos
		pos = skipSpace(s, pos)
		if pos >= len(s) {
			break
		}
		switch c := s[pos]; {
		case c == '\n' || c == '\r' || c == '#':
			pos = lineEnd(s, pos)
		case c == '[':
			it := tomlItem{header: true, array: strings.HasPrefix(s[pos:], "[["), start: start, line: lineNum(s, pos)}
			p := pos + 1
			if it.array {
				p++
			}
			it.key, p = scanKey(s, p)
			name := strings.Join(it.key, ".")
			it.path = name
			if it.array {
				it.path = name + "[" + strconv.Itoa(counts[name]) + "]"
				counts[name]++
			}
			table = it.path
			it.end = lineEnd(s, p)
			items = append(items, it)
			pos = it.end
		default:
			it := tomlItem{start: start, line: lineNum(s, pos)}
			var p int
			it.key, p = scanKey(s, pos)
			it.path = joinKey(table, strings.Join(it.key, "."))
			p = skipSpace(s, p)
			if p < len(s) && s[p] == '=' {
				p++
			}
			it.valStart = skipSpace(s, p)
			it.valEnd = scanValue(s, it.valStart)
			it.end = lineEnd(s, it.valEnd)
			items = append(items, it)
			pos = it.end
		}
	}
	return items
}

func lineNum(s string, off int) int { return 1 + strings.Count(s[:off], "\n") }

func skipSpace(s string, p int) int {
	for p < len(s) && (s[p] == ' ' || s[p] == '\t') {
		p++
	}
	return p
}

// skipBlank skips spaces, newlines and comments, as allowed inside arrays.
func skipBlank(s string, p int) int {
	for p < len(s) {
		switch s[p] {
		case ' ', '\t', '\r', '\n':
			p++
		case '#':
			p = lineEnd(s, p)
		default:
			return p
		}
	}
	return p
}

// lineEnd returns the offset just past the next newline at or after p.
func lineEnd(s string, p int) int {
	if i := strings.IndexByte(s[p:], '\n'); i >= 0 {
		return p + i + 1
	}
	return len(s)
}

// scanKey reads a possibly dotted, possibly quoted key (TOML 1.0 "Keys").
func scanKey(s string, p int) ([]string, int) {
	var key []string
	for {
		p = skipSpace(s, p)
		if p >= len(s) {
			return key, p
		}
		var seg string
		switch s[p] {
		case '"':
			q := p + 1
			for q < len(s) && s[q] != '"' && s[q] != '\n' {
				if s[q] == '\\' {
					q++
				}
				q++
			}
			q = min(q, len(s))
			seg = s[p:min(q+1, len(s))]
			if u, err := strconv.Unquote(seg); err == nil {
				seg = u
			}
			p = min(q+1, len(s))
		case '\'':
			q := strings.IndexAny(s[p+1:], "'\n")
			if q < 0 {
				return append(key, s[p+1:]), len(s)
			}
			seg, p = s[p+1:p+1+q], p+2+q
		default:
			q := p
			for q < len(s) && !strings.ContainsRune(" \t\r\n.=]#", rune(s[q])) {
				q++
			}
			seg, p = s[p:q], q
		}
		key = append(key, seg)
		p = skipSpace(s, p)
		if p >= len(s) || s[p] != '.' {
			return key, p
		}
		p++
	}
}

// scanValue returns the offset just past the value starting at p: a
// string of any of the four kinds, an array, an inline table or a bare
// value (number, boolean, date).
func scanValue(s string, p int) int {
	if p >= len(s) {
		return p
	}
	switch {
	case strings.HasPrefix(s[p:], `"""`):
		return closeMultiline(s, p+3, `"""`)
	case strings.HasPrefix(s[p:], `'''`):
		return closeMultiline(s, p+3, `'''`)
	case s[p] == '"':
		for q := p + 1; q < len(s); q++ {
			switch s[q] {
			case '\\':
				q++
			case '"':
				return q + 1
			case '\n':
				return q
			}
		}
		return len(s)
	case s[p] == '\'':
		if q := strings.IndexAny(s[p+1:], "'\n"); q >= 0 {
			return p + 2 + q
		}
		return len(s)
	case s[p] == '[' || s[p] == '{':
		closer := byte(']')
		if s[p] == '{' {
			closer = '}'
		}
		for q := p + 1; q < len(s); {
			q = skipBlank(s, q)
			switch {
			case q >= len(s):
				return len(s)
			case s[q] == closer:
				return q + 1
			case s[q] == ',':
				q++
			case closer == '}':
				_, k := scanKey(s, q)
				k = skipSpace(s, k)
				if k < len(s) && s[k] == '=' {
					k++
				}
				q = max(scanValue(s, skipSpace(s, k)), q+1)
			default:
				q = max(scanValue(s, q), q+1)
			}
		}
		return len(s)
	}
	q := p
	for q < len(s) && !strings.ContainsRune(" \t\r\n,]}#", rune(s[q])) {
		q++
	}
	return q
}

// closeMultiline finds the end of a multi-line string whose body starts at
// p. TOML lets up to two quote characters sit just before the delimiter.
func closeMultiline(s string, p int, delim string) int {
	for q := p; q < len(s); q++ {
		if delim[0] == '"' && s[q] == '\\' {
			q++
			continue
		}
		if strings.HasPrefix(s[q:], delim) {
			end := q + 3
			for n := 0; n < 2 && end < len(s) && s[end] == delim[0]; n++ {
				end++
			}
			return end
		}
	}
	return len(s)
}
