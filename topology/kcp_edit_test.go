package topology

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const kcpEditDoc = `apiVersion: gitca.dev/v1alpha1
kind: Preset
metadata:
  name: kcp
spec:
  type: kcp
  kcp:
    kubeconfigs:
      # Susan's, through the front-proxy.
      - name: susan
        username: susan
        target:
          frontProxyRef:
            name: edge
      # Straight at a shard.
      - name: shard-maintainer
        username: shard-maintainer
        target:
          shardRef: {name: alpha-1}

      - name: ci
        username: ci
        # the CI robot
        target:
          rootShardRef:
            name: beta
    rotations:
      alpha-client-ca:
        generation: 2
---
apiVersion: gitca.dev/v1alpha1
kind: Config
metadata:
  name: gitca
`

func TestRemoveKCPKubeconfig(t *testing.T) {
	for _, tc := range []struct {
		name, preset, remove, doc string
		want, err                 string
	}{
		{name: "first, with its comment", preset: "kcp", remove: "susan", doc: kcpEditDoc,
			want: `    kubeconfigs:
      # Straight at a shard.
      - name: shard-maintainer
`},
		{name: "middle: the next entry keeps its blank line", preset: "kcp", remove: "shard-maintainer", doc: kcpEditDoc,
			want: `            name: edge

      - name: ci
`},
		{name: "last, with the comments inside it", preset: "kcp", remove: "ci", doc: kcpEditDoc,
			want: `          shardRef: {name: alpha-1}

    rotations:
`},
		{name: "the only one", preset: "kcp", remove: "a", doc: "kind: Preset\nmetadata:\n  name: kcp\nspec:\n  kcp:\n    kubeconfigs:  # users\n      - name: a\n        username: a\n",
			want: "    kubeconfigs: [] # users\n"},
		{name: "not declared", preset: "kcp", remove: "bob", doc: kcpEditDoc, err: `Preset "kcp" declares no kubeconfig "bob" in spec.kcp.kubeconfigs`},
		{name: "another preset", preset: "other", remove: "susan", doc: kcpEditDoc, err: `no Preset "other" in this file`},
		{name: "flow style", preset: "kcp", remove: "a", doc: "kind: Preset\nmetadata:\n  name: kcp\nspec:\n  kcp:\n    kubeconfigs: [{name: a}]\n",
			err: "line 6: spec.kcp.kubeconfigs is written in flow style"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RemoveKCPKubeconfig([]byte(tc.doc), tc.preset, tc.remove)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Contains(t, string(out), tc.want)
			assert.NotContains(t, string(out), "name: "+tc.remove+"\n")
			assert.NotContains(t, string(out), "username: "+tc.remove+"\n")
		})
	}
}
