package doctor

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
)

// An encrypted token file opened without its passphrase (or with a wrong
// one) is a failed store step naming the variable, not "the store answers".
func TestStoreStepEncryptedWithoutPassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	t.Setenv(tokens.PassphraseEnv, "correct horse")
	st, err := tokens.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put("a@example.com", tokens.Entry{RefreshToken: "rt", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Store: config.Store{Backend: "file", Path: path}}
	for _, pass := range []string{"", "wrong horse"} {
		t.Setenv(tokens.PassphraseEnv, pass)
		step := checkStore(cfg, &Options{})
		if step.Status != Fail || step.Diagnosis == nil || step.Diagnosis.ID != "store-passphrase" {
			t.Fatalf("passphrase %q: step %+v, want a failure with id store-passphrase", pass, step)
		}
		if !strings.Contains(step.Diagnosis.Fix, tokens.PassphraseEnv) || !strings.Contains(step.Diagnosis.Fix, tokens.PassphraseFileEnv) {
			t.Errorf("passphrase %q: fix does not name the variables: %s", pass, step.Diagnosis.Fix)
		}
	}
	t.Setenv(tokens.PassphraseEnv, "correct horse")
	if step := checkStore(cfg, &Options{}); step.Status == Fail {
		t.Errorf("with the right passphrase: %+v", step)
	}
}
