package secrets

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	sopsage "github.com/getsops/sops/v3/age"
)

// Errors and logs end up in CI output, chat notifications and issue
// trackers. gitca's own messages never quote a key, but a library's error or
// a value in the wrong place (an identity in SOPS_AGE_RECIPIENTS, a token in
// a URL) can carry one; Scrub is the last line before anything is printed.

var scrubPatterns = []struct {
	re   *regexp.Regexp
	with string
}{
	// age X25519 and hybrid identities, in either case (bech32 accepts both).
	{regexp.MustCompile(`(?i)AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]*`), "AGE-SECRET-KEY-[redacted]"},
	// A PEM private key block of any label, whole or cut short, also with its
	// line breaks escaped (%q).
	{regexp.MustCompile(`-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)`), "[redacted $1]"},
	// Base64 of "-----BEGIN": a PEM block in a Secret's data: or a kubeconfig.
	{regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/=]*`), "[redacted base64 PEM]"},
	// Tokens of the forges gitca pushes to, by their documented shapes.
	{regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_-]{20,})`), "[redacted token]"},
	// A password or token in a URL's user info.
	{regexp.MustCompile(`(://[^/\s:@"']*):[^@/\s"']+@`), "$1:[redacted]@"},
}

// minKnown is the shortest known secret Scrub replaces: shorter values (a
// one-letter token in a test) would redact ordinary words.
const minKnown = 8

// ScrubString replaces in s every age identity, PEM private key (plain or
// base64), GitHub or GitLab token, password in a URL, and every known secret value (a token, a key
// file's content, line by line) with a marker that says what was there.
func ScrubString(s string, known ...string) string {
	for _, k := range known {
		for _, v := range append([]string{strings.TrimSpace(k)}, strings.Split(k, "\n")...) {
			if v = strings.TrimSpace(v); len(v) >= minKnown {
				s = strings.ReplaceAll(s, v, "[redacted]")
			}
		}
	}
	for _, p := range scrubPatterns {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return s
}

// Scrub is err with its message scrubbed (ScrubString); errors.Is and
// errors.As still see the original chain. nil stays nil.
func Scrub(err error, known ...string) error {
	if err == nil {
		return nil
	}
	msg := ScrubString(err.Error(), known...)
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// ErrNotRecipient is a value given as an age recipient that is not one.
var ErrNotRecipient = errors.New("not an age recipient")

// CheckRecipients checks that every value is a recipient sealing accepts,
// naming a bad one by its position in where, never by its value: what sits
// in a recipient list by mistake is often a secret key. A value that parses
// as an age identity is named as one, since it must now be rotated.
func CheckRecipients(where string, rcp []string) error {
	for i, r := range rcp {
		// What sealing accepts: X25519, hybrid and plugin age recipients, SSH keys.
		if _, err := sopsage.MasterKeyFromRecipient(r); err == nil {
			continue
		}
		what := "it does not start with age1 or ssh-"
		switch up := strings.ToUpper(r); {
		case strings.HasPrefix(up, "AGE-SECRET-KEY-"), strings.HasPrefix(up, "AGE-PLUGIN-"):
			what = "it is an age identity, a secret key: remove it, and rotate it (it may have been logged before)"
		case strings.Contains(up, "PRIVATE KEY"):
			what = "it is a private key: remove it, and rotate it"
		case strings.HasPrefix(r, "age1"), strings.HasPrefix(r, "ssh-"):
			what = "it is not a valid recipient"
		}
		return fmt.Errorf("%s: entry %d of %d: %w: %s", where, i+1, len(rcp), ErrNotRecipient, what)
	}
	return nil
}
