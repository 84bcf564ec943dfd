package doctor

import (
	"fmt"
	"io"
	"strings"
)

// marks are the symbols the text report puts before each step.
var marks = map[Status]string{Pass: "✓", Warn: "!", Fail: "✗", Skipped: "-"}

// titleWidth aligns the details of the text report.
const titleWidth = 34

// WriteText writes the report for a person: one line per step, and under
// each failure or warning what it means and how to fix it.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "bridge doctor: %s\n\n", orNone(r.Config))
	for _, s := range r.Checks {
		writeStep(&b, "", s)
	}
	for _, a := range r.Accounts {
		fmt.Fprintf(&b, "\n%s\n", a.Email)
		for _, s := range a.Steps {
			writeStep(&b, "  ", s)
		}
	}
	b.WriteByte('\n')
	b.WriteString(r.summary())
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("doctor: writing the report: %w", err)
	}
	return nil
}

func writeStep(b *strings.Builder, indent string, s Step) {
	fmt.Fprintf(b, "%s%s %-*s %s\n", indent, marks[s.Status], titleWidth, s.Title, s.Detail)
	d := s.Diagnosis
	if d == nil {
		return
	}
	pad := indent + "    "
	title := d.Title
	if d.ID != "" {
		title += " [" + d.ID + "]"
	}
	fmt.Fprintf(b, "%s%s\n", pad, title)
	para := func(label, text string) {
		text = strings.TrimSpace(text)
		if text == "" {
			return
		}
		cont := "\n" + pad + strings.Repeat(" ", len(label))
		fmt.Fprintf(b, "%s%s%s\n", pad, label, strings.ReplaceAll(text, "\n", cont))
	}
	para("Cause: ", d.Cause)
	para("Fix:   ", d.Fix)
	para("Raw:   ", d.Raw)
}

// summary is the last line: how many steps failed, or that all passed.
func (r *Report) summary() string {
	var total, failed, warned, skipped int
	count := func(steps []Step) {
		for _, s := range steps {
			total++
			switch s.Status {
			case Fail:
				failed++
			case Warn:
				warned++
			case Skipped:
				skipped++
			}
		}
	}
	count(r.Checks)
	for _, a := range r.Accounts {
		count(a.Steps)
	}
	var parts []string
	if failed > 0 {
		parts = append(parts, plural(failed, "check")+" failed")
	}
	if warned > 0 {
		parts = append(parts, plural(warned, "warning"))
	}
	if skipped > 0 {
		parts = append(parts, plural(skipped, "check")+" not run")
	}
	if failed == 0 && warned == 0 && skipped == 0 {
		return fmt.Sprintf("All %d checks passed.", total)
	}
	s := strings.Join(parts, ", ") + fmt.Sprintf(" (of %d).", total)
	if failed > 0 {
		s += " The fix is under each ✗."
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
