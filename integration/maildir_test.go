package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

// maildir is one user's Maildir as Dovecot reads it. The harness writes
// seeded and delivered messages straight into it, the way a local MTA
// would (tmp/, then a rename into new/), and reads it to check what a
// client did.
type maildir struct {
	dir      string
	uid, gid int // owner of new files; -1 leaves them as created
}

var deliverSeq atomic.Int64

// newMaildir creates the cur, new and tmp folders under dir.
func newMaildir(t testing.TB, dir string, uid, gid int) *maildir {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return &maildir{dir: dir, uid: uid, gid: gid}
}

// deliver adds m to new/ as an unseen message.
func (m *maildir) deliver(msg message) error {
	n := deliverSeq.Add(1)
	name := fmt.Sprintf("%d.M%dP%d.bridgetest", time.Now().Unix(), n, os.Getpid())
	tmp := filepath.Join(m.dir, "tmp", name)
	if err := os.WriteFile(tmp, msg.raw, 0o600); err != nil {
		return fmt.Errorf("integration: maildir: %w", err)
	}
	if m.uid >= 0 {
		if err := os.Chown(tmp, m.uid, m.gid); err != nil {
			return fmt.Errorf("integration: maildir: %w", err)
		}
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "new", name)); err != nil {
		return fmt.Errorf("integration: maildir: %w", err)
	}
	return nil
}

// maildirFiles lists the messages of any Maildir (the server's or one a
// client wrote), sorted by name.
func maildirFiles(dir string) ([]string, error) {
	var out []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, fmt.Errorf("integration: maildir: %w", err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				out = append(out, filepath.Join(dir, sub, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// chownTree gives every file and folder under dir to uid:gid.
func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
