package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mailbridge/bridge/internal/atomicfile"
	"github.com/mailbridge/bridge/internal/filelock"
)

// ErrNoAccount is returned by RemoveAccount for an email the file lacks.
var ErrNoAccount = errors.New("bridge: no such account in the config")

// newConfigHeader starts a config file that UpsertAccount creates.
const newConfigHeader = `# bridge configuration. config.example.toml documents every key.
# "bridge login" adds [[account]] blocks here; hand edits and comments are kept.
`

// UpsertAccount writes the account into the config file at path: the
// [[account]] block with the same email (ignoring case) has its keys
// updated in place, or a new block is added at the end. Every other byte
// of the file (comments, blank lines, other settings, the order of keys)
// stays as it was. Fields left empty in a are not touched, so a zero value
// never erases a setting. A missing file is created (mode 0600, its
// directory 0700). The file is replaced atomically, and only when the
// result loads and validates.
func UpsertAccount(path string, a Account) error {
	if a.Email == "" {
		return errors.New("bridge: UpsertAccount: the account has no email")
	}
	return editConfig(path, func(text string, cfg *Config, blocks []accountBlock) (string, error) {
		fields := accountFields(a)
		_, idx := cfg.Account(a.Email)
		if idx < 0 {
			return appendAccount(text, fields), nil
		}
		return updateAccount(text, blocks[idx], fields), nil
	})
}

// RemoveAccount deletes the [[account]] block for email (ignoring case),
// with the keys and comments inside it and the comment lines directly
// above its header, and leaves the rest of the file as it was; `bridge
// logout --remove` uses it. It fails with ErrNoAccount when there is no
// such block, and refuses an edit that leaves the file invalid (for
// example when another account borrows this one's tokens).
func RemoveAccount(path, email string) error {
	return editConfig(path, func(text string, cfg *Config, blocks []accountBlock) (string, error) {
		_, idx := cfg.Account(email)
		if idx < 0 {
			return "", fmt.Errorf("%w: %s (in %s)", ErrNoAccount, email, path)
		}
		b := blocks[idx]
		start, end := b.header.start, b.end()
		// Comment lines right above the header describe the account and go
		// with it; so does one blank line before them, so that repeated
		// removals do not leave growing gaps.
		for start > 0 {
			ps := strings.LastIndexByte(text[:start-1], '\n') + 1
			if !strings.HasPrefix(strings.TrimSpace(text[ps:start]), "#") {
				break
			}
			start = ps
		}
		if start > 0 {
			ps := strings.LastIndexByte(text[:start-1], '\n') + 1
			if strings.TrimSpace(text[ps:start]) == "" {
				start = ps
			}
		}
		return text[:start] + text[end:], nil
	})
}

// accountBlock is one [[account]] table in the text: its header and the
// key/value items under it.
type accountBlock struct {
	header tomlItem
	kvs    []tomlItem
}

// end is the offset just past the block's last key (or its header), which
// leaves any comment between it and the next table in place.
func (b accountBlock) end() int {
	if len(b.kvs) > 0 {
		return b.kvs[len(b.kvs)-1].end
	}
	return b.header.end
}

func (b accountBlock) find(key string) *tomlItem {
	for i := range b.kvs {
		if len(b.kvs[i].key) == 1 && b.kvs[i].key[0] == key {
			return &b.kvs[i]
		}
	}
	return nil
}

// editLockWait is how long an edit waits for another process's edit of
// the same config file.
const editLockWait = 30 * time.Second

// editConfig loads the file (or the header of a new one), lets edit change
// its text, checks that the result loads, and replaces the file atomically.
func editConfig(path string, edit func(text string, cfg *Config, blocks []accountBlock) (string, error)) error {
	// Edit the file a symlink points at rather than replacing the link.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	// Two commands editing at once (`bridge login` for two accounts) each
	// read, change and write the whole file; the lock, with the read under
	// it, keeps one from writing back what the other just replaced.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("bridge: config directory: %w", err)
	}
	lock, err := filelock.Acquire(path+".lock", editLockWait)
	if err != nil {
		return fmt.Errorf("bridge: config: %w", err)
	}
	defer lock.Release()
	mode := fs.FileMode(0o600)
	data, err := os.ReadFile(path)
	created := errors.Is(err, fs.ErrNotExist)
	switch {
	case created:
		data = []byte(newConfigHeader)
	case err != nil:
		return fmt.Errorf("bridge: reading config: %w", err)
	default:
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	cfg, err := parse(path, data)
	if err != nil {
		return fmt.Errorf("bridge: not editing %s until its errors are fixed: %w", path, err)
	}
	text := string(data)
	var blocks []accountBlock
	items := scanTOML(text)
	for _, it := range items {
		switch {
		case it.header && it.array && len(it.key) == 1 && it.key[0] == "account":
			blocks = append(blocks, accountBlock{header: it})
		case it.header:
			// Another table ends the current account block.
			blocks = append(blocks, accountBlock{})
		case len(blocks) > 0 && blocks[len(blocks)-1].header.header:
			blocks[len(blocks)-1].kvs = append(blocks[len(blocks)-1].kvs, it)
		}
	}
	blocks = compactBlocks(blocks)
	if len(blocks) != len(cfg.Accounts) {
		return fmt.Errorf("bridge: %s writes accounts in a form this editor does not handle (use one [[account]] block per account)", path)
	}
	out, err := edit(text, cfg, blocks)
	if err != nil {
		return err
	}
	if _, err := parse(path, []byte(out)); err != nil {
		return fmt.Errorf("bridge: the edit would leave the config invalid, %s is unchanged: %w", path, err)
	}
	if created {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("bridge: creating the config directory: %w", err)
		}
	}
	return writeFileAtomic(path, []byte(out), mode)
}

// compactBlocks drops the placeholders that stand for other tables.
func compactBlocks(in []accountBlock) []accountBlock {
	out := in[:0]
	for _, b := range in {
		if b.header.header {
			out = append(out, b)
		}
	}
	return out
}

// field is one key to write, with its TOML text and decoded value.
type field struct {
	key, literal string
	value        any
}

// accountFields lists the account's non-empty settings in struct order,
// which is also the order config.example.toml uses.
func accountFields(a Account) []field {
	var out []field
	v := reflect.ValueOf(a)
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("toml")
		switch x := v.Field(i).Interface().(type) {
		case string:
			if x != "" {
				out = append(out, field{tag, tomlString(x), x})
			}
		case []string:
			if len(x) > 0 {
				lits := make([]string, len(x))
				vals := make([]any, len(x))
				for j, s := range x {
					lits[j], vals[j] = tomlString(s), s
				}
				out = append(out, field{tag, "[" + strings.Join(lits, ", ") + "]", vals})
			}
		}
	}
	return out
}

// newline returns the line ending the text already uses, so that a file
// written on Windows keeps its CRLFs.
func newline(text string) string {
	if strings.Contains(text, "\r\n") {
		return "\r\n"
	}
	return "\n"
}

func appendAccount(text string, fields []field) string {
	nl := newline(text)
	var b strings.Builder
	b.WriteString(text)
	if text != "" && !strings.HasSuffix(text, "\n") {
		b.WriteString(nl)
	}
	if text != "" && !strings.HasSuffix(text, nl+nl) {
		b.WriteString(nl)
	}
	b.WriteString("[[account]]" + nl)
	for _, f := range fields {
		b.WriteString(f.key + " = " + f.literal + nl)
	}
	return b.String()
}

// updateAccount rewrites only the values that differ and adds the missing
// keys after the block's last key, indented like its email line.
func updateAccount(text string, b accountBlock, fields []field) string {
	type change struct {
		start, end int
		text       string
	}
	var changes []change
	var added strings.Builder
	nl := newline(text)
	indent := ""
	if e := b.find("email"); e != nil {
		line := text[e.start:]
		indent = line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	}
	for _, f := range fields {
		if f.key == "email" {
			continue // it matched, perhaps in another case; keep the user's spelling
		}
		kv := b.find(f.key)
		if kv == nil {
			added.WriteString(indent + f.key + " = " + f.literal + nl)
			continue
		}
		if sameValue(text[kv.valStart:kv.valEnd], f.value) {
			continue
		}
		changes = append(changes, change{kv.valStart, kv.valEnd, f.literal})
	}
	if added.Len() > 0 {
		at := b.end()
		ins := added.String()
		if text[at-1] != '\n' {
			ins = nl + ins
		}
		changes = append(changes, change{at, at, ins})
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].start > changes[j].start })
	for _, c := range changes {
		text = text[:c.start] + c.text + text[c.end:]
	}
	return text
}

// sameValue reports whether the TOML value text decodes to want.
func sameValue(valText string, want any) bool {
	var m map[string]any
	if _, err := toml.Decode("v = "+valText, &m); err != nil {
		return false
	}
	return reflect.DeepEqual(m["v"], want)
}

// tomlString quotes s as a TOML basic string (TOML 1.0 "String"): Go's
// strconv.Quote would write \x escapes, which TOML does not have.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeFileAtomic writes the config through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("bridge: writing config: %w", err)
	}
	return nil
}
