package gitsync

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// newSSHKey writes a fresh ed25519 private key in OpenSSH format to a file in
// t.TempDir() and returns the path and public key.
func newSSHKey(t *testing.T, name string) (string, ssh.PublicKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return path, signer.PublicKey(), signer
}

// knownHostsFile writes a known_hosts file trusting key for hostport.
func knownHostsFile(t *testing.T, hostport string, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key)
	require.NoError(t, os.WriteFile(path, []byte(line+"\n"), 0o600))
	return path
}

func TestAuthMethod(t *testing.T) {
	keyFile, _, _ := newSSHKey(t, "id_ed25519")
	_, hostKey, _ := newSSHKey(t, "host")
	kh := knownHostsFile(t, "gitserver:22", hostKey)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("file-token\n"), 0o600))
	emptyToken := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(emptyToken, []byte("\n"), 0o600))
	garbageKey := filepath.Join(t.TempDir(), "garbage")
	require.NoError(t, os.WriteFile(garbageKey, []byte("NOT-A-KEY-secretbytes"), 0o600))

	const (
		fileSrc  = "file:///srv/pki.git"
		httpsSrc = "https://github.com/org/pki.git"
		sshSrc   = "ssh://deploy@gitserver/org/pki.git"
		scpSrc   = "gitserver:org/pki.git"
	)
	tests := []struct {
		name    string
		src     string
		opts    AuthOptions
		env     map[string]string
		check   func(t *testing.T, m transport.AuthMethod)
		wantErr string
	}{
		{name: "file needs none", src: fileSrc, check: isNil},
		{name: "https anonymous without token", src: httpsSrc, env: map[string]string{DefaultTokenEnv: ""}, check: isNil},
		{name: "https token from default env", src: httpsSrc, env: map[string]string{DefaultTokenEnv: " env-token\n"},
			check: basic("git", "env-token")},
		{name: "https custom env and user", src: httpsSrc, opts: AuthOptions{HTTPSTokenEnv: "MY_TOKEN", HTTPSUsername: "x-access-token"},
			env: map[string]string{"MY_TOKEN": "t1", DefaultTokenEnv: "ignored"}, check: basic("x-access-token", "t1")},
		{name: "https token file wins over env", src: httpsSrc, opts: AuthOptions{HTTPSTokenFile: tokenFile},
			env: map[string]string{DefaultTokenEnv: "env-token"}, check: basic("git", "file-token")},
		{name: "https empty token file", src: httpsSrc, opts: AuthOptions{HTTPSTokenFile: emptyToken}, wantErr: "is empty"},
		{name: "https missing token file", src: httpsSrc, opts: AuthOptions{HTTPSTokenFile: tokenFile + ".nope"}, wantErr: "no such file"},
		{name: "ssh without known_hosts is refused", src: sshSrc, opts: AuthOptions{SSHKeyFile: keyFile},
			wantErr: "needs a known_hosts file"},
		{name: "ssh without key", src: sshSrc, opts: AuthOptions{SSHKnownHostsFile: kh}, wantErr: "needs a private key file"},
		{name: "ssh known_hosts missing", src: sshSrc, opts: AuthOptions{SSHKeyFile: keyFile, SSHKnownHostsFile: kh + ".nope"},
			wantErr: "no such file"},
		{name: "ssh unparsable key", src: sshSrc, opts: AuthOptions{SSHKeyFile: garbageKey, SSHKnownHostsFile: kh},
			wantErr: "not a usable unencrypted private key"},
		{name: "ssh user from URL", src: sshSrc, opts: AuthOptions{SSHKeyFile: keyFile, SSHKnownHostsFile: kh},
			check: sshUser("deploy")},
		{name: "scp-style defaults to user git", src: scpSrc, opts: AuthOptions{SSHKeyFile: keyFile, SSHKnownHostsFile: kh},
			check: sshUser("git")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			src, err := ParseSource(tt.src)
			require.NoError(t, err)
			m, err := tt.opts.Method(src)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "secretbytes", "errors never echo key material")
				return
			}
			require.NoError(t, err)
			tt.check(t, m)
		})
	}
}

func isNil(t *testing.T, m transport.AuthMethod) { assert.Nil(t, m) }

func basic(user, token string) func(*testing.T, transport.AuthMethod) {
	return func(t *testing.T, m transport.AuthMethod) {
		b, ok := m.(*githttp.BasicAuth)
		require.True(t, ok, "got %T", m)
		assert.Equal(t, user, b.Username)
		assert.Equal(t, token, b.Password)
		// go-git's String() is what ends up in logs; it must mask the token.
		assert.NotContains(t, b.String(), token)
	}
}

func sshUser(user string) func(*testing.T, transport.AuthMethod) {
	return func(t *testing.T, m transport.AuthMethod) {
		k, ok := m.(*gitssh.PublicKeys)
		require.True(t, ok, "got %T", m)
		assert.Equal(t, user, k.User)
		assert.NotNil(t, k.HostKeyCallback, "host keys are always checked")
		assert.NotEmpty(t, k.HostKeyAlgorithms)
	}
}

func TestAuthDescribeNamesSourcesNotSecrets(t *testing.T) {
	t.Setenv(DefaultTokenEnv, "tok-123456")
	https, err := ParseSource("https://github.com/org/pki.git")
	require.NoError(t, err)
	d := AuthOptions{}.describe(https)
	assert.Contains(t, d, "env "+DefaultTokenEnv)
	assert.NotContains(t, d, "tok-123456")

	t.Setenv(DefaultTokenEnv, "")
	assert.Contains(t, AuthOptions{}.describe(https), "anonymous")

	sshSrc, err := ParseSource("git@gitserver:org/pki.git")
	require.NoError(t, err)
	d = AuthOptions{SSHKeyFile: "/keys/id", SSHKnownHostsFile: "/keys/kh"}.describe(sshSrc)
	assert.Equal(t, `ssh public key from /keys/id as user "git", host keys from /keys/kh`, d)
}

func TestOpenRefusesSSHWithoutKnownHosts(t *testing.T) {
	keyFile, _, _ := newSSHKey(t, "id")
	// Nothing listens here: the refusal must come before any connection.
	src, err := ParseSource("ssh://git@127.0.0.1:1/org/pki.git")
	require.NoError(t, err)
	cache := t.TempDir()
	_, err = Open(context.Background(), src, cache, AuthOptions{SSHKeyFile: keyFile})
	require.ErrorContains(t, err, "needs a known_hosts file")
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	assert.Empty(t, entries, "a refused source leaves no clone behind")
}
