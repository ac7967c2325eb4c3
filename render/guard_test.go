package render

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/topology"
)

// TestDestructionGuard: a plan that deletes a CA, or most of the objects,
// fails naming what it would destroy, unless the Config lists those objects
// in spec.allowDelete or the run allows destruction; nothing is written.
func TestDestructionGuard(t *testing.T) {
	dropOther := func(e *env) {
		removeDoc(t, e, "cas.yaml", "  name: other\n")
		removeDoc(t, e, "leafs.yaml", "  name: db-peer\n")
		e.edit("leafs.yaml", "    - ca: other\n", "")
	}
	emptyTopology := func(e *env) {
		// A bad merge: every object gone, the Config left.
		require.NoError(t, os.Remove(filepath.Join(e.topo, "cas.yaml")))
		require.NoError(t, os.Remove(filepath.Join(e.topo, "leafs.yaml")))
	}
	for _, c := range []struct {
		name         string
		edit         func(e *env)
		allowDelete  string // added to the Config's spec
		allowDestroy bool
		wantIDs      []string // refused, naming these; nil: allowed
	}{
		{name: "a CA", edit: dropOther, wantIDs: []string{"CertificateAuthority/other"}},
		{name: "a CA the Config allows", edit: dropOther, allowDelete: "  allowDelete: [CertificateAuthority/other]\n"},
		{name: "a CA with --allow-destroy", edit: dropOther, allowDestroy: true},
		{name: "a leaf alone is an ordinary change", edit: func(e *env) { removeDoc(t, e, "leafs.yaml", "  name: web\n") }},
		{name: "everything", edit: emptyTopology,
			wantIDs: []string{"CertificateAuthority/issuing", "CertificateAuthority/other", "CertificateAuthority/root"}},
		{name: "everything but the CAs, which the Config allows", edit: emptyTopology,
			allowDelete: "  allowDelete: [CertificateAuthority/root, CertificateAuthority/issuing, CertificateAuthority/other]\n",
			wantIDs:     []string{"Certificate/client", "Certificate/db-peer", "Certificate/web", "KeyPair/sa", "Kubeconfig/ops"}},
		{name: "everything with --allow-destroy", edit: emptyTopology, allowDestroy: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "testdata/basic")
			e.run(t0, &e.ids)
			before := e.snapshot()
			c.edit(e)
			if c.allowDelete != "" {
				e.edit("config.yaml", "spec:\n", "spec:\n"+c.allowDelete)
			}
			top, err := topology.Load(e.topo)
			require.NoError(t, err)
			st, err := plan.ReadState(e.state)
			require.NoError(t, err)
			opt := plan.Options{Now: t0.Add(time.Hour), Recipients: plan.ResolveRecipients(top, []string{e.recipient}), AllowDestroy: c.allowDestroy}
			p, err := plan.Make(top, st, opt)
			if c.wantIDs == nil {
				require.NoError(t, err)
				assert.True(t, p.Changes())
				return
			}
			var de *plan.DestroyError
			require.True(t, errors.As(err, &de), "want a DestroyError, got %v", err)
			assert.Equal(t, c.wantIDs, de.IDs)
			assert.Contains(t, err.Error(), "spec.allowDelete")
			assert.Contains(t, err.Error(), "--allow-destroy")
			// Render refuses the same way and writes nothing.
			_, err = e.tryRun(t0.Add(time.Hour), &e.ids)
			require.ErrorAs(t, err, &de)
			assert.Equal(t, before, e.snapshot())
		})
	}
}

func TestAllowDeleteNamesObjects(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	e.edit("config.yaml", "spec:\n", "spec:\n  allowDelete: [other]\n")
	top, err := topology.Load(e.topo)
	require.NoError(t, err)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	_, err = plan.Make(top, st, plan.Options{Now: t0})
	require.Error(t, err)
	assert.Regexp(t, `config.yaml:\d+:\d+: spec.allowDelete\[0\]: "other" is not an object ID \(<Kind>/<name> with Kind one of CertificateAuthority, Certificate, KeyPair, Kubeconfig, MergedKubeconfig\)`, err.Error())
}
