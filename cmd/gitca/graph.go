package main

import (
	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/graph"
)

func newGraphCmd() *cobra.Command {
	var topo, cluster, output string
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Print the issuer tree of a topology as a Mermaid or DOT graph",
		Long: `graph draws every CA, imported root, certificate, key pair, kubeconfig and
trust bundle of a topology: solid arrows from an issuer to what it signs,
dotted ones from a source to the trust bundle that includes it. It reads the
topology only (no state, no key).

--cluster draws what is delivered into that cluster's overlay and what it
hangs from: the CAs on each issuer path and the sources of each trust bundle.`,
		Example: `  # Mermaid, for a README or a pull request (GitHub renders a mermaid code block)
  gitca graph --topology examples/kcp

  # One cluster, as SVG through Graphviz
  gitca graph --topology examples/kubeadm --cluster demo -o dot | dot -Tsvg > pki.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, string(graph.Mermaid), string(graph.DOT)); err != nil {
				return err
			}
			t, err := loadTopology(cmd.Context(), cmd.ErrOrStderr(), topo, "in "+topo)
			if err != nil {
				return err
			}
			g, err := graph.New(t, graph.Options{Cluster: cluster})
			if err != nil {
				return err
			}
			return g.Write(cmd.OutOrStdout(), graph.Format(output))
		},
	}
	cmd.Flags().StringVar(&topo, "topology", "", "topology directory (required)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "draw only what is delivered into this cluster, with its issuers and bundle sources")
	cmd.Flags().StringVarP(&output, "output", "o", string(graph.Mermaid), "output format: mermaid|dot")
	_ = cmd.MarkFlagRequired("topology")
	return cmd
}
