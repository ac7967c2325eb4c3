package gitsync

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSource(t *testing.T) {
	cwd, err := os.Getwd()
	require.NoError(t, err)

	tests := []struct {
		in      string
		want    Source
		wantErr string
	}{
		// Local paths.
		{in: "/srv/topo.git", want: Source{URL: "file:///srv/topo.git", Branch: "main"}},
		{in: "/srv/topo.git//clusters/prod#release", want: Source{URL: "file:///srv/topo.git", Branch: "release", Dir: "clusters/prod"}},
		{in: "./state", want: Source{URL: "file://" + filepath.Join(cwd, "state"), Branch: "main"}},
		{in: "../up/state.git#gitca", want: Source{URL: "file://" + filepath.Join(filepath.Dir(cwd), "up", "state.git"), Branch: "gitca"}},
		{in: "/srv/./a/../topo.git/", want: Source{URL: "file:///srv/topo.git", Branch: "main"}},
		// file://
		{in: "file:///srv/topo.git//clusters/prod#main", want: Source{URL: "file:///srv/topo.git", Branch: "main", Dir: "clusters/prod"}},
		{in: "file://localhost/srv/topo.git", want: Source{URL: "file:///srv/topo.git", Branch: "main"}},
		{in: "file:///srv/topo.git//a/./b/../c/", want: Source{URL: "file:///srv/topo.git", Branch: "main", Dir: "a/c"}},
		{in: "file:///srv/topo.git//.", want: Source{URL: "file:///srv/topo.git", Branch: "main"}},
		// ssh:// and scp-style.
		{in: "ssh://git@github.com:2222/org/pki.git#prod", want: Source{URL: "ssh://git@github.com:2222/org/pki.git", Branch: "prod"}},
		{in: "ssh://GitHub.com/org/pki.git//state", want: Source{URL: "ssh://github.com/org/pki.git", Branch: "main", Dir: "state"}},
		{in: "git@github.com:org/pki.git", want: Source{URL: "ssh://git@github.com/org/pki.git", Branch: "main"}},
		{in: "git@github.com:org/pki.git//clusters/prod#feature/x", want: Source{URL: "ssh://git@github.com/org/pki.git", Branch: "feature/x", Dir: "clusters/prod"}},
		{in: "gitserver:/srv/pki.git", want: Source{URL: "ssh://gitserver/srv/pki.git", Branch: "main"}},
		// https://
		{in: "https://github.com/org/pki.git", want: Source{URL: "https://github.com/org/pki.git", Branch: "main"}},
		{in: "HTTPS://GitLab.example.com:8443/group/sub/pki/#state", want: Source{URL: "https://gitlab.example.com:8443/group/sub/pki", Branch: "state"}},
		{in: "https://token-user@github.com/org/pki.git//x", want: Source{URL: "https://token-user@github.com/org/pki.git", Branch: "main", Dir: "x"}},
		// Errors.
		{in: "", wantErr: "empty repository address"},
		{in: "http://github.com/org/pki.git", wantErr: "plain http is refused"},
		{in: "git://github.com/org/pki.git", wantErr: `unsupported scheme "git"`},
		{in: "s3://bucket/pki", wantErr: "accepted forms"},
		{in: "https://user:s3cret@github.com/org/pki.git", wantErr: "credentials in the URL are refused"},
		{in: "http://user:s3cret@github.com/org/pki.git", wantErr: "credentials in the URL are refused"},
		{in: "ssh://git:s3cret@github.com/org/pki.git#main", wantErr: "credentials in the URL are refused"},
		{in: "https://github.com", wantErr: "missing repository path"},
		{in: "https:///org/pki.git", wantErr: "missing host"},
		{in: "file://server/srv/pki.git", wantErr: "must not name a host"},
		{in: "file://relative/../x", wantErr: "must not name a host"},
		{in: "/srv/topo.git#", wantErr: "empty branch"},
		{in: "/srv/topo.git#bad..branch", wantErr: "invalid branch name"},
		{in: "/srv/topo.git//../etc#main", wantErr: "escapes the repository"},
		{in: "git@github.com:org/pki.git//a/../../b", wantErr: "escapes the repository"},
		{in: "@github.com:org/pki.git", wantErr: "needs [user@]host:path"},
		{in: "git@github.com:", wantErr: "missing repository path"},
		{in: "/srv/my repo.git", wantErr: "whitespace"},
		{in: "https://github.com/org/pki.git?ref=main", wantErr: "unexpected query"},
		{in: "/", wantErr: "filesystem root"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSource(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "s3cret", "errors never echo a password")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			// Normalised sources are fixed points: parsing the rendered form
			// gives the same source, so cache keys are stable.
			again, err := ParseSource(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
}

func TestParseSourceErrorsListAcceptedForms(t *testing.T) {
	for _, in := range []string{"http://h/p", "ftp://h/p", "https://h"} {
		_, err := ParseSource(in)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "https://host/path", in)
		assert.Contains(t, err.Error(), "ssh://", in)
	}
}

func TestCacheKeySeparatesBranchesAndDirs(t *testing.T) {
	base := Source{URL: "file:///srv/pki.git", Branch: "main"}
	otherBranch, otherDir, otherURL := base, base, base
	otherBranch.Branch = "state"
	otherDir.Dir = "state"
	otherURL.URL = "file:///srv/pki2.git"

	keys := map[string]bool{}
	for _, s := range []Source{base, otherBranch, otherDir, otherURL} {
		k := cacheKey(s)
		assert.Len(t, k, 16)
		keys[k] = true
	}
	assert.Len(t, keys, 4)
	assert.Equal(t, cacheKey(base), cacheKey(Source{URL: "file:///srv/pki.git", Branch: "main"}), "stable across calls")
}
