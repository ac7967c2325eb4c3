package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReconcileRace starts 4 reconciler processes at once against one state
// repository, 20 rounds, a new certificate in the topology each round (every
// other round pushed while the reconcilers run). Whoever loses a push
// re-plans on the winner's state, so history stays linear, no CA is created
// twice and no certificate is lost.
func TestReconcileRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 80 reconciler processes")
	}
	const (
		racers = 4
		rounds = 20
	)
	topo := newTopology(t, smallTopology(t))
	state := newBare(t, "state")
	e := newEnv(t)
	e.usePlainBinary(t)
	caches := make([]string, racers)
	for i := range caches {
		caches[i] = t.TempDir()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	var added []string // leafs pushed to the topology so far
	seen := []string{} // leafs in the state after the previous round
	for round := range rounds {
		name := fmt.Sprintf("leaf-%02d", round)
		// The last round pushes first, so the final state must hold every leaf.
		midRound := round%2 == 1 && round != rounds-1
		if !midRound {
			topo.push(t, "add "+name, map[string]string{name + ".yaml": leafDoc(name)})
			added = append(added, name)
		}
		settled := slices.Clone(added) // pushed before any racer of this round started

		type proc struct {
			cmd    *exec.Cmd
			stderr fmt.Stringer
		}
		procs := make([]proc, racers)
		for i := range procs {
			cmd, _, stderr := e.command(context.Background(), reconcileArgs(topo.bare, state, caches[i], t0)...)
			procs[i] = proc{cmd, stderr}
		}
		for _, p := range procs {
			require.NoError(t, p.cmd.Start())
		}
		if midRound {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
			topo.push(t, "add "+name, map[string]string{name + ".yaml": leafDoc(name)})
			added = append(added, name)
		}
		for i, p := range procs {
			require.NoError(t, p.cmd.Wait(), "round %d racer %d:\n%s", round, i, p.stderr)
		}

		got := leafsIn(t, state)
		for _, l := range settled {
			assert.Contains(t, got, l, "round %d: pushed before the round, so every racer rendered it", round)
		}
		for _, l := range seen {
			assert.Contains(t, got, l, "round %d: %s was in the state and got lost", round, l)
		}
		seen = got
	}

	assert.Empty(t, git(t, state, "log", "--merges", "--oneline", "main"), "history is linear")
	git(t, state, "fsck", "--strict", "--no-dangling")
	assert.Equal(t, added, leafsIn(t, state), "every certificate of every round is there")

	// Every object exists once: one CA file per CA, made by exactly one
	// commit and never rewritten (a second creation would show up as a
	// modification), no object recorded twice.
	var cas []string
	for _, f := range files(t, state, "main") {
		if strings.HasPrefix(f, "ca/") {
			cas = append(cas, f)
		}
	}
	assert.Equal(t, []string{"ca/issuing.yaml", "ca/other.yaml", "ca/root.yaml"}, cas)
	for _, f := range append(cas, leafPaths(added)...) {
		assert.Equal(t, "1", git(t, state, "rev-list", "--count", "main", "--", f), "%s written by exactly one commit", f)
	}
	st := readState(t, state, "main")
	requireConsistentCAs(t, st)

	// Each commit was rendered from a topology at least as new as its
	// parent's: a slow racer never rendered an older topology over a newer
	// one's state.
	commits := strings.Split(git(t, state, "rev-list", "--reverse", "main"), "\n")
	var prev string
	for _, c := range commits {
		tc := git(t, state, "log", "-1", "--format=%(trailers:key=Gitca-Topology-Commit,valueonly)", c)
		require.NotEmpty(t, tc, "commit %s has its topology trailer", c)
		if prev != "" {
			git(t, topo.bare, "merge-base", "--is-ancestor", prev, tc)
		}
		prev = tc
	}
}

// leafsIn lists the leaf-NN certificates in the state's main branch, sorted.
func leafsIn(t testing.TB, state string) []string {
	t.Helper()
	var out []string
	for _, f := range files(t, state, "main") {
		base := path.Base(f)
		if strings.HasPrefix(base, "secret-leaf-") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(base, "secret-"), ".yaml"))
		}
	}
	return out
}

func leafPaths(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "clusters/prod/pki/secret-" + n + ".yaml"
	}
	return out
}

// requireConsistentCAs checks that each CA's certificate is the same in
// every file that carries it (its own record, copies, chains, ca.crt) and
// that no object is recorded twice.
func requireConsistentCAs(t testing.TB, st *state.State) {
	t.Helper()
	bySubject := map[string][]byte{}
	for id, obj := range st.Primary {
		assert.Empty(t, obj.Problems, "%s", id)
		if strings.HasPrefix(id, "CertificateAuthority/") {
			require.NotNil(t, obj.Cert(), id)
			bySubject[obj.Cert().Subject.String()] = obj.Cert().Raw
		}
	}
	require.Len(t, bySubject, 3)
	objs := make([]*state.Object, 0, len(st.Primary)+len(st.Copies))
	for _, o := range st.Primary {
		objs = append(objs, o)
	}
	for _, o := range st.Copies {
		objs = append(objs, o)
	}
	checked := 0
	for _, o := range objs {
		for _, c := range append(slices.Clone(o.CertChain()), o.CAChain()...) {
			if raw, ok := bySubject[c.Subject.String()]; ok {
				assert.Equal(t, raw, c.Raw, "%s carries a different %s", o.Path, c.Subject)
				checked++
			}
		}
	}
	assert.Greater(t, checked, 3, "CA certificates were found beyond their own records")
}

// TestReconcileCrash kills a reconcile with SIGKILL at random points of its
// run, until 30 kills have landed while it was running (a run that finished
// before its kill does not count): the remote is only ever at the old commit
// or the one new commit, and the next, uninterrupted run from the same cache
// converges to what an uninterrupted run against a reference repository
// produces, without re-signing what was already committed.
func TestReconcileCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 30 reconciler processes")
	}
	const kills, maxRuns = 30, 90
	topo := newTopology(t, smallTopology(t))
	state, reference := newBare(t, "state"), newBare(t, "reference")
	e := newEnv(t)
	e.usePlainBinary(t)
	cache, refCache := t.TempDir(), t.TempDir()
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
	e.mustRun(t, reconcileArgs(topo.bare, reference, refCache, t0)...)

	// Spread the kills over a whole run that has something to do.
	topo.push(t, "add warmup", map[string]string{"warmup.yaml": leafDoc("warmup")})
	start := time.Now()
	e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
	// A little past the run's end, so that some kills land after the push
	// (the run no longer being there does not count as a kill).
	span := time.Since(start) * 13 / 10
	e.mustRun(t, reconcileArgs(topo.bare, reference, refCache, t0)...)
	seed := uint64(time.Now().UnixNano())
	t.Logf("killing within %s, seed %d", span, seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	killed, landed := 0, 0
	before := readState(t, state, "main")
	for i := 0; killed < kills; i++ {
		require.Less(t, i, maxRuns, "only %d of %d runs were still running when killed", killed, i)
		name := fmt.Sprintf("crash-%02d", i)
		topoHead := topo.push(t, "add "+name, map[string]string{name + ".yaml": leafDoc(name)})
		old := tip(t, state, "main")

		cmd, _, _ := e.command(context.Background(), reconcileArgs(topo.bare, state, cache, t0)...)
		require.NoError(t, cmd.Start())
		time.Sleep(time.Duration(rng.Int64N(int64(span) + 1)))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		cut := ok && ws.Signaled() // it was still running: the kill cut it short
		if cut {
			killed++
		}

		if now := tip(t, state, "main"); now != old {
			if cut {
				landed++
			}
			assert.Equal(t, old, git(t, state, "rev-parse", now+"^"), "run %d: the new commit sits on the old one", i)
			assert.Equal(t, "1", git(t, state, "rev-list", "--count", old+".."+now), "run %d: one new commit", i)
			assert.Equal(t, topoHead, git(t, state, "log", "-1", "--format=%(trailers:key=Gitca-Topology-Commit,valueonly)", now))
			git(t, state, "fsck", "--strict", "--no-dangling", now)
		}

		var wg sync.WaitGroup
		wg.Go(func() { e.mustRun(t, reconcileArgs(topo.bare, reference, refCache, t0)...) })
		e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
		wg.Wait()

		require.Equal(t, files(t, reference, "main"), files(t, state, "main"), "run %d: converged to the reference's files", i)
		after := readState(t, state, "main")
		for id, obj := range before.Primary {
			if obj.Cert() != nil {
				require.NotNil(t, after.Primary[id], id)
				assert.Equal(t, obj.Cert().Raw, after.Primary[id].Cert().Raw, "run %d: %s was committed and is kept", i, id)
			}
		}
		require.Contains(t, after.Primary, "Certificate/"+name)
		// The next run finds nothing to do.
		out := e.mustRun(t, reconcileArgs(topo.bare, state, cache, t0)...)
		assert.Contains(t, out.stdout, "no changes", "run %d: converged", i)
		before = after
	}
	git(t, state, "fsck", "--strict", "--no-dangling")
	assert.Empty(t, git(t, state, "log", "--merges", "--oneline", "main"))
	requireConsistentCAs(t, readState(t, state, "main"))
	t.Logf("%d kills landed while the run was running; %d of those runs had already pushed", killed, landed)
}
