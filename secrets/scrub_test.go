package secrets

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScrub(t *testing.T) {
	id, rcp, err := GenerateAgeKey(time.Now())
	require.NoError(t, err)
	var identity string
	for _, l := range strings.Split(string(id), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			identity = l
		}
	}
	key := "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKr7zMZ3\nAwEHoUQDQgAE\n-----END EC PRIVATE KEY-----\n"
	for _, c := range []struct{ name, in, secret, want string }{
		{"identity", "age recipient " + identity + ": bad", identity, "age recipient AGE-SECRET-KEY-[redacted]: bad"},
		{"identity, lower case", "x " + strings.ToLower(identity), strings.ToLower(identity)[20:], "x AGE-SECRET-KEY-[redacted]"},
		{"PEM key", "parsing " + key + " failed", "MHcCAQEEIKr7zMZ3", "parsing [redacted EC PRIVATE KEY]\n failed"},
		{"PEM key, quoted", fmt.Sprintf("bad value %q", key), "MHcCAQEEIKr7zMZ3", `bad value "[redacted EC PRIVATE KEY]\n"`},
		{"PEM key cut short", "begins -----BEGIN PRIVATE KEY-----\nMHcCAQEEIKr7zMZ3", "MHcCAQEEIKr7zMZ3", "begins [redacted PRIVATE KEY]"},
		{"base64 PEM", "client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0t", "LS0tLS1CRUdJTiBFQyBQUklW", "client-key-data: [redacted base64 PEM]"},
		{"URL password", "fetch from https://git:ghp_abcdef123456@example.com/x.git: 403", "ghp_abcdef123456", "fetch from https://git:[redacted]@example.com/x.git: 403"},
		{"GitHub token", "dns name ghp_0123456789abcdefghijABCDEFGHIJ0123456789.example.com", "ghp_0123456789", "dns name [redacted token].example.com"},
		{"GitLab token", "token glpat-abcdefghij0123456789", "glpat-abc", "token [redacted token]"},
		{"recipient stays", "sealed to " + rcp, "", "sealed to " + rcp},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Scrub(errors.New(c.in))
			assert.Equal(t, c.want, err.Error())
			if c.secret != "" {
				assert.NotContains(t, err.Error(), c.secret)
			}
		})
	}
	t.Run("known values, line by line", func(t *testing.T) {
		err := fmt.Errorf("wrap: %w", ErrMACMismatch)
		err = fmt.Errorf("token tok-1234567890 and line two-secret-line: %w", err)
		s := Scrub(err, "tok-1234567890\n", "line one\ntwo-secret-line\n")
		assert.Equal(t, "token [redacted] and line [redacted]: wrap: "+ErrMACMismatch.Error(), s.Error())
		assert.ErrorIs(t, s, ErrMACMismatch, "the chain is kept")
	})
	assert.Nil(t, Scrub(nil))
}

func TestCheckRecipients(t *testing.T) {
	id, rcp, err := GenerateAgeKey(time.Now())
	require.NoError(t, err)
	identity := strings.TrimSpace(string(id[strings.Index(string(id), "AGE-SECRET-KEY-"):]))
	require.NoError(t, CheckRecipients("SOPS_AGE_RECIPIENTS", []string{rcp}))
	for _, c := range []struct{ in, want string }{
		{identity, "SOPS_AGE_RECIPIENTS: entry 2 of 2: not an age recipient: it is an age identity, a secret key"},
		{"-----BEGIN PRIVATE KEY-----", "SOPS_AGE_RECIPIENTS: entry 2 of 2: not an age recipient: it is a private key"},
		{"age1nope", "SOPS_AGE_RECIPIENTS: entry 2 of 2: not an age recipient: it is not a valid recipient"},
		{"ghp_token", "SOPS_AGE_RECIPIENTS: entry 2 of 2: not an age recipient: it does not start with age1 or ssh-"},
	} {
		err := CheckRecipients("SOPS_AGE_RECIPIENTS", []string{rcp, c.in})
		require.ErrorIs(t, err, ErrNotRecipient)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), c.in)
	}
	_, err = SealDoc(Doc{"a": "b"}, []string{rcp, identity}, time.Now())
	require.ErrorIs(t, err, ErrNotRecipient)
	assert.NotContains(t, err.Error(), identity)
}
