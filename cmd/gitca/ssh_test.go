package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestReconcileOverSSH runs the loop the CronJob runs: both repositories
// over ssh with a key file and known_hosts, against a server on 127.0.0.1
// whose git side is the real git-upload-pack and git-receive-pack. A
// known_hosts that does not vouch for the server stops the run before
// anything is fetched.
func TestReconcileOverSSH(t *testing.T) {
	keyFile, pub := sshKey(t, "id_ed25519")
	srv := serveGitOverSSH(t, pub)
	topo := newTopology(t, smallTopology(t))
	state := newBare(t, "state")
	good := knownHosts(t, srv.addr, srv.hostKey)
	_, impostor := sshKey(t, "impostor")
	e := newEnv(t)
	url := func(bare string) string { return fmt.Sprintf("ssh://git@%s%s#main", srv.addr, bare) }

	cache := t.TempDir()
	args := reconcileArgs(url(topo.bare), url(state), cache, t0, "--ssh-key-file", keyFile, "--ssh-known-hosts", good)
	e.mustRun(t, args...)
	assert.Contains(t, files(t, state, "main"), "ca/root.yaml")
	assert.Contains(t, e.mustRun(t, args...).stdout, "no changes")

	topo.push(t, "add web", map[string]string{"web.yaml": leafDoc("web")})
	before := tip(t, state, "main")
	r := e.run(t, reconcileArgs(url(topo.bare), url(state), t.TempDir(), t0,
		"--ssh-key-file", keyFile, "--ssh-known-hosts", knownHosts(t, srv.addr, impostor))...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "authentication failed")
	assert.Contains(t, r.stderr, "knownhosts: key mismatch")
	assert.Equal(t, before, tip(t, state, "main"))
}

func sshKey(t *testing.T, name string) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return path, signer.PublicKey()
}

func knownHosts(t *testing.T, hostport string, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	require.NoError(t, os.WriteFile(path, []byte(knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key)+"\n"), 0o600))
	return path
}

type sshServer struct {
	addr    string
	hostKey ssh.PublicKey
}

// serveGitOverSSH accepts the user "git" with the authorised key and runs the
// one git command each session asks for.
func serveGitOverSSH(t *testing.T, authorized ssh.PublicKey) *sshServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	host, err := ssh.NewSignerFromKey(hostPriv)
	require.NoError(t, err)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "git" && bytes.Equal(k.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unauthorised")
		},
	}
	cfg.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveConn(conn, cfg) })
		}
	})
	return &sshServer{addr: ln.Addr().String(), hostKey: host.PublicKey()}
}

func serveConn(conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go serveExec(ch, chReqs)
	}
}

// serveExec runs "git-upload-pack '/path'" or "git-receive-pack '/path'".
func serveExec(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		prog, arg, _ := strings.Cut(payload.Command, " ")
		if prog != "git-upload-pack" && prog != "git-receive-pack" {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command("git", strings.TrimPrefix(prog, "git-"), strings.Trim(arg, "'"))
		cmd.Env = gitEnv()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
		}
		_ = ch.CloseWrite()
		st := make([]byte, 4)
		binary.BigEndian.PutUint32(st, status)
		_, _ = ch.SendRequest("exit-status", false, st)
		return
	}
}
