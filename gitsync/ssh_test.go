package gitsync

import (
	"bytes"
	"context"
	"encoding/binary"
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
)

// sshGitServer is a minimal git-over-ssh server on 127.0.0.1, in the spirit
// of go-git's own transport tests: x/crypto/ssh does the protocol and the
// real git-upload-pack / git-receive-pack serve the repositories, so the
// client side (go-git, our auth and host-key checks) runs unmodified.
type sshGitServer struct {
	addr    string
	hostKey ssh.PublicKey
}

func startSSHGitServer(t *testing.T, authorized ssh.PublicKey) *sshGitServer {
	t.Helper()
	_, _, hostSigner := newSSHKey(t, "ssh_host_ed25519_key")
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "git" && bytes.Equal(k.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unauthorised key")
		},
	}
	cfg.AddHostKey(hostSigner)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveSSHConn(conn, cfg)
			}()
		}
	}()
	return &sshGitServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey()}
}

func serveSSHConn(conn net.Conn, cfg *ssh.ServerConfig) {
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
		go serveSession(ch, chReqs)
	}
}

// serveSession runs the one exec request a git client sends: a command like
// "git-upload-pack '/path/repo.git'".
func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
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

func TestSSHRemote(t *testing.T) {
	clientKey, clientPub, _ := newSSHKey(t, "id_ed25519")
	srv := startSSHGitServer(t, clientPub)
	_, bare := newRemote(t)
	src, err := ParseSource(fmt.Sprintf("ssh://git@%s%s#main", srv.addr, bare))
	require.NoError(t, err)
	goodHosts := knownHostsFile(t, srv.addr, srv.hostKey)
	ctx := context.Background()

	t.Run("clone, commit and push", func(t *testing.T) {
		r, err := Open(ctx, src, t.TempDir(), AuthOptions{SSHKeyFile: clientKey, SSHKnownHostsFile: goodHosts})
		require.NoError(t, err)
		defer r.Unlock()
		writeFile(t, filepath.Join(r.Dir(), "ca.yaml"), "ca\n")
		h, ok, err := r.Commit("over ssh", nil, testAuthor())
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, r.Push(ctx, ""))
		assert.Equal(t, h.String(), remoteTip(t, bare, "main"))

		// A second clone sees it through the same transport.
		r2, err := Open(ctx, src, t.TempDir(), AuthOptions{SSHKeyFile: clientKey, SSHKnownHostsFile: goodHosts})
		require.NoError(t, err)
		defer r2.Unlock()
		assert.Equal(t, "ca\n", readFile(t, filepath.Join(r2.Dir(), "ca.yaml")))
	})

	_, otherHostKey, _ := newSSHKey(t, "impostor")
	wrongKey, _, _ := newSSHKey(t, "id_wrong")
	unknownHosts := knownHostsFile(t, "127.0.0.1:1", srv.hostKey)
	tests := []struct {
		name string
		opts AuthOptions
		want string
	}{
		{"key not authorised", AuthOptions{SSHKeyFile: wrongKey, SSHKnownHostsFile: goodHosts}, "unable to authenticate"},
		{"host key mismatch", AuthOptions{SSHKeyFile: clientKey, SSHKnownHostsFile: knownHostsFile(t, srv.addr, otherHostKey)}, "knownhosts: key mismatch"},
		{"host not in known_hosts", AuthOptions{SSHKeyFile: clientKey, SSHKnownHostsFile: unknownHosts}, "knownhosts: key is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(ctx, src, t.TempDir(), tt.opts)
			require.ErrorIs(t, err, ErrAuth)
			msg := err.Error()
			t.Log(msg)
			assert.Contains(t, msg, tt.want)
			assert.Contains(t, msg, src.URL, "the message names the remote")
			assert.Contains(t, msg, "ssh public key from "+tt.opts.SSHKeyFile, "and the credentials tried")
			key, err := os.ReadFile(tt.opts.SSHKeyFile)
			require.NoError(t, err)
			assert.NotContains(t, msg, strings.TrimSpace(string(key)))
		})
	}

	t.Run("push with revoked key", func(t *testing.T) {
		cache := t.TempDir()
		r, err := Open(ctx, src, cache, AuthOptions{SSHKeyFile: clientKey, SSHKnownHostsFile: goodHosts})
		require.NoError(t, err)
		defer r.Unlock()
		writeFile(t, filepath.Join(r.Dir(), "b.yaml"), "b\n")
		_, _, err = r.Commit("b", nil, testAuthor())
		require.NoError(t, err)
		// Swap in an unauthorised key as if it were rotated mid-run.
		r.auth, err = AuthOptions{SSHKeyFile: wrongKey, SSHKnownHostsFile: goodHosts}.Method(src)
		require.NoError(t, err)
		tip := remoteTip(t, bare, "main")
		err = r.Push(ctx, "")
		require.ErrorIs(t, err, ErrAuth)
		assert.NotErrorIs(t, err, ErrRejected)
		assert.Equal(t, tip, remoteTip(t, bare, "main"))
	})
}
