package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// checkTable compares one decoded TOML table with the struct type t and
// reports unknown keys (with the closest known key) and values of the wrong
// type. prefix is the table's key path ("" for the root).
func checkTable(file string, lines map[string]int, prefix string, m map[string]any, t reflect.Type) []error {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		fields[tag] = f.Type
		names = append(names, tag)
	}
	var errs []error
	for k, v := range m {
		path := joinKey(prefix, k)
		bad := func(msg string, args ...any) {
			errs = append(errs, &Error{File: file, Line: lines[path], Key: path, Msg: fmt.Sprintf(msg, args...)})
		}
		ft, ok := fields[k]
		if !ok {
			msg := "unknown key"
			if s := closest(k, names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			bad("%s", msg)
			continue
		}
		switch {
		case ft.Kind() == reflect.String:
			if _, ok := v.(string); !ok {
				bad("want a string, found %s", tomlType(v))
			}
		case ft.Kind() == reflect.Int:
			if _, ok := v.(int64); !ok {
				bad("want an integer, found %s", tomlType(v))
			}
		case ft.Kind() == reflect.Bool:
			if _, ok := v.(bool); !ok {
				bad("want true or false, found %s", tomlType(v))
			}
		case ft.Kind() == reflect.Struct:
			sub, ok := v.(map[string]any)
			if !ok {
				bad("want a table [%s], found %s", path, tomlType(v))
				continue
			}
			errs = append(errs, checkTable(file, lines, path, sub, ft)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
			arr, ok := v.([]any)
			if !ok {
				bad("want an array of strings, found %s", tomlType(v))
				continue
			}
			for i, e := range arr {
				if _, ok := e.(string); !ok {
					bad("element %d: want a string, found %s", i, tomlType(e))
				}
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			arr, ok := v.([]map[string]any)
			if !ok {
				bad("want [[%s]] blocks, found %s", path, tomlType(v))
				continue
			}
			for i, sub := range arr {
				errs = append(errs, checkTable(file, lines, fmt.Sprintf("%s[%d]", path, i), sub, ft.Elem())...)
			}
		}
	}
	return errs
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// tomlType names the TOML type of a decoded value, for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// closest returns the known key nearest to k by edit distance, or "" when
// none is near enough to be a plausible misspelling.
func closest(k string, known []string) string {
	best, bestD := "", 0
	lk := strings.ToLower(k)
	for _, n := range known {
		d := editDistance(lk, n)
		if best == "" || d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > max(2, len(best)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance, with a swap of two adjacent
// letters counted once (the commonest typing slip).
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
