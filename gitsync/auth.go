package gitsync

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// DefaultTokenEnv is the environment variable read for an HTTPS token when
// AuthOptions names none.
const DefaultTokenEnv = "GITCA_GIT_TOKEN"

// AuthOptions says where credentials come from. It holds file names and an
// environment variable name, never the secrets themselves, so the struct can
// be logged and quoted in errors.
type AuthOptions struct {
	SSHKeyFile        string // private key file (never logged)
	SSHKnownHostsFile string // REQUIRED for ssh: there is no insecure default
	HTTPSTokenEnv     string // env var holding a token (default GITCA_GIT_TOKEN)
	HTTPSTokenFile    string // file holding a token; wins over the env var
	HTTPSUsername     string // default "git"
}

// Method builds the go-git auth method for src. file:// needs none; https
// without a token is anonymous (public repositories); ssh always needs a key
// and a known_hosts file, because trusting the first host key seen would let
// anyone on the path hand us a forged topology.
func (o AuthOptions) Method(src Source) (transport.AuthMethod, error) {
	u, err := url.Parse(src.URL)
	if err != nil {
		return nil, fmt.Errorf("gitsync: auth for %s: %w", src.URL, err)
	}
	switch u.Scheme {
	case "file":
		return nil, nil
	case "ssh":
		return o.sshMethod(u)
	case "https":
		return o.httpsMethod()
	default:
		return nil, fmt.Errorf("gitsync: auth for %s: unsupported scheme %q", src.URL, u.Scheme)
	}
}

func (o AuthOptions) sshMethod(u *url.URL) (transport.AuthMethod, error) {
	if o.SSHKnownHostsFile == "" {
		return nil, fmt.Errorf("gitsync: ssh remote %s needs a known_hosts file (SSHKnownHostsFile); "+
			"host keys are never accepted unverified", u.Redacted())
	}
	if o.SSHKeyFile == "" {
		return nil, fmt.Errorf("gitsync: ssh remote %s needs a private key file (SSHKeyFile)", u.Redacted())
	}
	if _, err := os.Stat(o.SSHKnownHostsFile); err != nil {
		return nil, fmt.Errorf("gitsync: ssh known_hosts for %s: %w", u.Redacted(), err)
	}
	db, err := gitssh.NewKnownHostsDb(o.SSHKnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("gitsync: ssh known_hosts %s: %w", o.SSHKnownHostsFile, err)
	}
	user := u.User.Username()
	if user == "" {
		user = "git"
	}
	keyPEM, err := os.ReadFile(o.SSHKeyFile)
	if err != nil {
		// The path error names the file only, never its content.
		return nil, fmt.Errorf("gitsync: ssh key for %s: %w", u.Redacted(), err)
	}
	keys, err := gitssh.NewPublicKeys(user, keyPEM, "")
	if err != nil {
		// x/crypto/ssh parse errors describe the format, not the bytes; still
		// name the file rather than echo anything from it.
		return nil, fmt.Errorf("gitsync: ssh key %s is not a usable unencrypted private key: %v", o.SSHKeyFile, err)
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	keys.HostKeyCallback = db.HostKeyCallback()
	// Offer only the host key algorithms known_hosts can verify, or a server
	// with several host keys may present one we cannot check.
	keys.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(u.Hostname(), port))
	return keys, nil
}

func (o AuthOptions) httpsMethod() (transport.AuthMethod, error) {
	token, _, err := o.token()
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, nil
	}
	user := o.HTTPSUsername
	if user == "" {
		user = "git"
	}
	return &githttp.BasicAuth{Username: user, Password: token}, nil
}

// token returns the HTTPS token and where it came from (for messages).
func (o AuthOptions) token() (string, string, error) {
	if o.HTTPSTokenFile != "" {
		b, err := os.ReadFile(o.HTTPSTokenFile)
		if err != nil {
			return "", "", fmt.Errorf("gitsync: https token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", "", fmt.Errorf("gitsync: https token file %s is empty", o.HTTPSTokenFile)
		}
		return t, "file " + o.HTTPSTokenFile, nil
	}
	env := o.tokenEnv()
	return strings.TrimSpace(os.Getenv(env)), "env " + env, nil
}

func (o AuthOptions) tokenEnv() string {
	if o.HTTPSTokenEnv != "" {
		return o.HTTPSTokenEnv
	}
	return DefaultTokenEnv
}

// describe says what credentials were tried for src, for ErrAuth messages.
// It names sources (files, variables, users), never values.
func (o AuthOptions) describe(src Source) string {
	u, err := url.Parse(src.URL)
	if err != nil {
		return "unknown"
	}
	switch u.Scheme {
	case "ssh":
		user := u.User.Username()
		if user == "" {
			user = "git"
		}
		return fmt.Sprintf("ssh public key from %s as user %q, host keys from %s", o.SSHKeyFile, user, o.SSHKnownHostsFile)
	case "https":
		t, from, err := o.token()
		if err != nil {
			return "https token (unreadable)"
		}
		if t == "" {
			return fmt.Sprintf("anonymous https (no token in %s)", from)
		}
		user := o.HTTPSUsername
		if user == "" {
			user = "git"
		}
		return fmt.Sprintf("https basic auth as %q with the token from %s", user, from)
	default:
		return "no credentials (local repository)"
	}
}
