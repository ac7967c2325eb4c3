package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	sopsage "github.com/getsops/sops/v3/age"
)

// The environment variables and the default file the sops CLI reads age
// identities and recipients from; gitca reads the same ones so that one setup
// serves both.
const (
	EnvAgeKeyFile    = sopsage.SopsAgeKeyFileEnv // "SOPS_AGE_KEY_FILE"
	EnvAgeKey        = sopsage.SopsAgeKeyEnv     // "SOPS_AGE_KEY"
	EnvAgeRecipients = "SOPS_AGE_RECIPIENTS"
	// defaultKeyFile is relative to os.UserConfigDir, as in sops
	// (sopsage.SopsAgeKeyUserConfigPath).
	defaultKeyFile = "sops/age/keys.txt"
)

// ErrNoIdentity means no age identity was configured anywhere LoadIdentities looks.
var ErrNoIdentity = errors.New("no age identity found")

// Identities holds age identities (private keys). It deliberately prints as a
// count only, so that an identity can never reach a log or an error by %v.
type Identities struct {
	ids sopsage.ParsedIdentities
}

// String never reveals key material.
func (i Identities) String() string { return fmt.Sprintf("<%d age identities>", len(i.ids)) }

// GoString keeps %#v as safe as %v.
func (i Identities) GoString() string { return i.String() }

// Len is the number of identities.
func (i Identities) Len() int { return len(i.ids) }

// Recipients are the public keys of the X25519 identities, sorted: the
// recipients a file must be sealed to for these identities to open it.
func (i Identities) Recipients() []string {
	var out []string
	for _, id := range i.ids {
		if x, ok := id.(*age.X25519Identity); ok {
			out = append(out, x.Recipient().String())
		}
	}
	sort.Strings(out)
	return out
}

// ParseIdentities reads an age identity file: one identity per line, blank
// lines and # comments ignored (the format of age-keygen and of
// SOPS_AGE_KEY_FILE). Errors name the line, never its content.
func ParseIdentities(r io.Reader) (Identities, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return Identities{}, fmt.Errorf("reading age identities: %w", err)
	}
	var ids sopsage.ParsedIdentities
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Import one line at a time so a parse error can be located by line
		// number; sops' own messages do not quote the key.
		if err := ids.Import(line); err != nil {
			return Identities{}, fmt.Errorf("age identity on line %d: not a valid identity", n+1)
		}
	}
	if len(ids) == 0 {
		return Identities{}, fmt.Errorf("%w: the input holds no identity line", ErrNoIdentity)
	}
	return Identities{ids: ids}, nil
}

// LoadIdentities finds the age identities the way an operator configures sops:
// SOPS_AGE_KEY_FILE first, then SOPS_AGE_KEY (identities separated by
// whitespace or newlines), else the sops default file
// $XDG_CONFIG_HOME/sops/age/keys.txt (~/.config/sops/age/keys.txt). The first
// source that is set wins: an explicitly configured source that is broken is an
// error rather than a silent fallback to another key.
func LoadIdentities() (Identities, error) {
	if p := os.Getenv(EnvAgeKeyFile); p != "" {
		f, err := os.Open(p)
		if err != nil {
			return Identities{}, fmt.Errorf("%s: %w", EnvAgeKeyFile, err)
		}
		defer f.Close()
		ids, err := ParseIdentities(f)
		if err != nil {
			return Identities{}, fmt.Errorf("%s=%s: %w", EnvAgeKeyFile, p, err)
		}
		return ids, nil
	}
	if v := os.Getenv(EnvAgeKey); strings.TrimSpace(v) != "" {
		// sops accepts several identities on one line in this variable.
		ids, err := ParseIdentities(strings.NewReader(strings.Join(strings.Fields(v), "\n")))
		if err != nil {
			return Identities{}, fmt.Errorf("%s: %w", EnvAgeKey, err)
		}
		return ids, nil
	}
	dir, derr := os.UserConfigDir()
	def := "$XDG_CONFIG_HOME/" + defaultKeyFile
	if derr == nil {
		def = filepath.Join(dir, filepath.FromSlash(defaultKeyFile))
		f, err := os.Open(def)
		if err == nil {
			defer f.Close()
			ids, err := ParseIdentities(f)
			if err != nil {
				return Identities{}, fmt.Errorf("%s: %w", def, err)
			}
			return ids, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return Identities{}, fmt.Errorf("%s: %w", def, err)
		}
	}
	return Identities{}, fmt.Errorf("%w: %s and %s are unset and %s does not exist", ErrNoIdentity, EnvAgeKeyFile, EnvAgeKey, def)
}

// DefaultRecipients are what a run seals to where the topology names no
// recipients: SOPS_AGE_RECIPIENTS, as for the sops CLI, else the recipients
// of the identities at hand (ids may be nil). A value in the variable that is
// not a recipient (often a secret key pasted by mistake) is refused without
// being echoed.
func DefaultRecipients(ids *Identities) ([]string, error) {
	env := RecipientsFromEnv()
	if err := CheckRecipients(EnvAgeRecipients, env); err != nil {
		return nil, err
	}
	if len(env) == 0 && ids != nil {
		return ids.Recipients(), nil
	}
	return env, nil
}

// RecipientsFromEnv reads SOPS_AGE_RECIPIENTS: age recipients separated by
// commas and/or whitespace, in order, duplicates dropped.
func RecipientsFromEnv() []string {
	fields := strings.FieldsFunc(os.Getenv(EnvAgeRecipients), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	seen := map[string]bool{}
	var out []string
	for _, f := range fields {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// GenerateAgeKey makes a new X25519 age identity in age-keygen's file format,
// which both SOPS_AGE_KEY_FILE and age itself read.
func GenerateAgeKey(now time.Time) (identityFileContent []byte, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, "", fmt.Errorf("generating age identity: %w", err)
	}
	recipient = id.Recipient().String()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# created: %s\n", now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# public key: %s\n", recipient)
	fmt.Fprintf(&b, "%s\n", id.String())
	return b.Bytes(), recipient, nil
}
