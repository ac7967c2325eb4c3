package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

func newRotateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Declare a staged key rotation (Add, Switch, Drop) in the topology",
		Long: `rotate writes spec.rotation into the topology file that declares a CA or a
key pair (spec.rotations.<name> of the Preset that generates it), changing
nothing else in the file. Commit it; the next runs then carry the rotation
out, one phase per run, each shown by gitca plan before it happens:

  Add     a new key generation is made and trusted next to the old one
  Switch  after the soak, the new generation signs; everything below is reissued
  Drop    after another soak, the old generation leaves every trust file

A rollback is a topology change too: --rollback sets the generation back to
the one that signed before, which is possible until Drop.`,
	}
	cmd.AddCommand(newRotateObjectCmd("ca", topology.KindCertificateAuthority), newRotateObjectCmd("keypair", topology.KindKeyPair))
	return cmd
}

func newRotateObjectCmd(use, kind string) *cobra.Command {
	var topoDir, stateDir, soak, retire, tokenLifetime string
	var generation int
	var rollback bool
	cmd := &cobra.Command{
		Use:   use + " NAME",
		Short: "Rotate the key of a " + kind,
		Example: fmt.Sprintf(`  # Start rotating the kubeadm cluster CA (soak 24h by default)
  gitca rotate %s demo-%s --topology ./topology --state ./state
  git -C topology commit -am "rotate demo-%[2]s" && git -C topology push

  # Roll back before Drop
  gitca rotate %[1]s demo-%[2]s --topology ./topology --state ./state --rollback`, use, map[string]string{"ca": "ca", "keypair": "sa"}[use]),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rollback && generation != 0 {
				return fmt.Errorf("--rollback and --generation exclude each other")
			}
			if tokenLifetime != "" && kind != topology.KindKeyPair {
				return fmt.Errorf("--token-lifetime applies to key pairs only")
			}
			t, err := loadTopology(cmd.Context(), cmd.ErrOrStderr(), topoDir, "in "+topoDir)
			if err != nil {
				return err
			}
			name := args[0]
			site, err := rotationSiteOf(t, kind, name)
			if err != nil {
				return err
			}
			declared := site.declared
			var st *state.State
			if stateDir != "" {
				if st, err = plan.ReadState(stateDir); err != nil {
					return err
				}
			}
			signing, other, phase := plan.StoredRotation(st, plan.ObjectKind(kind), name)
			switch {
			case generation > 0:
			case rollback && st == nil:
				generation = declared - 1
			case rollback && other == 0:
				return fmt.Errorf("%s %s has no rotation in flight in %s: after Drop, rotate forward instead", kind, name, stateDir)
			case rollback && phase == plan.PhaseAdd:
				generation = signing // the new generation never signed
			case rollback:
				generation = other // the old generation, still trusted, signs again
			default:
				generation = max(declared, signing, other) + 1
			}
			if generation < 1 {
				return fmt.Errorf("generation %d: generations start at 1", generation)
			}
			file := filepath.Join(t.Root, filepath.FromSlash(site.origin.File))
			edit := topology.RotationEdit{Generation: generation, Soak: soak, Retire: retire, TokenLifetime: tokenLifetime}
			if err := rewriteTopologyFile(file, site.target, edit, topoDir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s.generation: %d (was %d)\n", site.origin.File, site.field, generation, max(declared, 1))
			fmt.Fprintf(cmd.OutOrStdout(), "Commit the topology; `gitca plan` shows what the next run does and from when each phase follows.\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&topoDir, "topology", "", "topology directory (required)")
	cmd.Flags().StringVar(&stateDir, "state", "", "state directory, to continue from the generations it holds (recommended)")
	cmd.Flags().IntVar(&generation, "generation", 0, "the generation to declare (default: one more than the highest declared or in the state)")
	cmd.Flags().BoolVar(&rollback, "rollback", false, "declare the generation that signed before the rotation in flight")
	cmd.Flags().StringVar(&soak, "soak", "", "time between phases, for every consumer to reload (default 24h)")
	cmd.Flags().StringVar(&retire, "retire", "", "what happens to the old key at Drop: keep (default) or delete")
	if kind == topology.KindKeyPair {
		cmd.Flags().StringVar(&tokenLifetime, "token-lifetime", "", "longest lifetime of a token signed with the key: the old public key stays this long after Switch (default 24h)")
	}
	_ = cmd.MarkFlagRequired("topology")
	return cmd
}

// rotationSite is where an object's rotation is declared: its own
// spec.rotation, or, for an object a Preset generated, the Preset's
// spec.rotations.<name>. declared is the generation declared there (1 when
// none is).
type rotationSite struct {
	declared int
	target   topology.RotationTarget
	origin   topology.Origin // the document that holds (or will hold) it
	field    string
}

func rotationSiteOf(t *topology.Topology, kind, name string) (rotationSite, error) {
	var r *topology.Rotation
	var origin topology.Origin
	switch kind {
	case topology.KindCertificateAuthority:
		ca := t.CA(name)
		if ca == nil {
			return rotationSite{}, fmt.Errorf("no CertificateAuthority %q in the topology (have: %s)", name, strings.Join(caNames(t), ", "))
		}
		if ca.Spec.Import != nil {
			return rotationSite{}, fmt.Errorf("CertificateAuthority %s is imported: gitca cannot make a new generation of its key", name)
		}
		r, origin = ca.Spec.Rotation, ca.Origin
	default:
		kp := t.KeyPair(name)
		if kp == nil {
			return rotationSite{}, fmt.Errorf("no KeyPair %q in the topology", name)
		}
		r, origin = kp.Spec.Rotation, kp.Origin
	}
	site := rotationSite{declared: 1, target: topology.RotationTarget{Kind: kind, Name: name}, origin: origin, field: "spec.rotation"}
	if r != nil {
		site.declared = r.Generation
	}
	if origin.Preset != "" {
		site.target = topology.RotationTarget{Kind: topology.KindPreset, Name: origin.Preset, Entry: name}
		site.field = "spec.rotations." + name
		if p := t.Preset(origin.Preset); p != nil {
			site.origin = p.Origin
		}
	}
	return site, nil
}

func caNames(t *topology.Topology) []string {
	var out []string
	for _, ca := range t.CAs {
		out = append(out, ca.Metadata.Name)
	}
	return out
}

// rewriteTopologyFile edits the file in place and keeps the edit only if
// the topology still loads.
func rewriteTopologyFile(file string, target topology.RotationTarget, edit topology.RotationEdit, topoDir string) error {
	old, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	updated, err := topology.SetRotation(old, target, edit)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := os.WriteFile(file, updated, fi.Mode().Perm()); err != nil {
		return err
	}
	if _, err := loadTopology(context.Background(), io.Discard, topoDir, "after the edit"); err != nil {
		if rerr := os.WriteFile(file, old, fi.Mode().Perm()); rerr != nil {
			return fmt.Errorf("%w (and restoring %s failed: %v)", err, file, rerr)
		}
		return fmt.Errorf("%s left as it was: %w", file, err)
	}
	return nil
}
