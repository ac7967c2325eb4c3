package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/export"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
)

func newExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Decrypt rendered material into a tool's on-disk layout",
	}
	cmd.AddCommand(newExportKubeadmCmd())
	return cmd
}

func newExportKubeadmCmd() *cobra.Command {
	var stateDir, cluster, node, out string
	cmd := &cobra.Command{
		Use:   "kubeadm",
		Short: "Write one node's kubeadm PKI and kubeconfigs (/etc/kubernetes layout), keys decrypted",
		Long: `export kubeadm decrypts a kubeadm cluster from the state and writes kubeadm's
on-disk layout: pki/ca.crt, pki/ca.key, pki/apiserver.crt, ..., pki/etcd/...,
pki/sa.key, pki/sa.pub, admin.conf, super-admin.conf, controller-manager.conf,
scheduler.conf and the node's kubelet.conf. Keys and kubeconfigs are written
with mode 0600. This writes private keys in plain text on purpose: run it on
the node, into /etc/kubernetes.`,
		Example: `  SOPS_AGE_KEY_FILE=age.key gitca export kubeadm --state ./state --node cp-0 --out /etc/kubernetes`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, err := secrets.LoadIdentities()
			if err != nil {
				return fmt.Errorf("export needs an age identity: %w", err)
			}
			st, err := plan.ReadStateContext(cmd.Context(), stateDir)
			if err != nil {
				return err
			}
			if len(st.Files) == 0 {
				return errors.New("--state " + stateDir + " is empty: run gitca render first")
			}
			files, err := export.Kubeadm(st, ids, cluster, node, out)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state", "", "state directory (required)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "kubeadm cluster (optional when the state holds one)")
	cmd.Flags().StringVar(&node, "node", "", "node whose per-node certificates and kubelet.conf to write (default: the first by name)")
	cmd.Flags().StringVar(&out, "out", "", "output directory, e.g. /etc/kubernetes (required)")
	_ = cmd.MarkFlagRequired("state")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
