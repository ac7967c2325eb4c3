package main

import (
	"crypto/rand"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/render"
)

// A CA whose issuer is offline (imported without its key) is signed by a
// person with that key, away from gitca: gitca makes the CA's key, keeps it
// sealed, and hands out a request, which goes through review like
// everything else in the state.
func newCSRCmd() *cobra.Command {
	var f commonFlags
	cmd := &cobra.Command{
		Use:   "csr NAME",
		Short: "Make the key and a certificate signing request of a CA whose issuer is offline",
		Long: `csr renders like 'gitca render' and, for the CertificateAuthority NAME, whose
issuer is offline (imported without its key), makes a new private key, sealed
in ca/NAME.yaml to the reconciler, and a PKCS#10 request for it, written to
ca/NAME.csr for the pull request. Until its certificate is committed, the plan
shows the CA and everything below it waiting (csr-pending) and signs nothing
for them.

Sign the request with the offline key, commit the certificate to the topology
and name it in the CA's spec.signedCertificate. The next plan checks that it
is the certificate of the key gitca holds, is signed by the declared offline
CA, has CA:TRUE and the pathLen the topology asks for, and lies within the
offline CA's validity; it refuses anything else, naming the file and what is
wrong. Run csr again on a CA that has its certificate for a renewal request for
the same key.`,
		Example: `  gitca csr issuing-ca --topology ./topology --state ./state
  # on the offline machine
  openssl x509 -req -in ca/issuing-ca.csr -CA root.crt -CAkey root.key -days 1825 \
    -copy_extensions copy -out issuing-ca.crt
  # in the topology: spec.signedCertificate: issuing-ca.crt, then
  gitca plan --topology ./topology --state ./state`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(f.output, "text", "json", "yaml"); err != nil {
				return err
			}
			in, err := f.load(cmd)
			if err != nil {
				return err
			}
			in.opt.CSRs = []string{args[0]}
			in.opt.Progress = progressLine(cmd.ErrOrStderr())
			res, err := render.Render(cmd.Context(), in.topology, in.state, in.opt, in.ids, rand.Reader)
			if err != nil {
				return err
			}
			if err := emit.Write(f.state, res.Tree); err != nil {
				return fmt.Errorf("writing %s: %w", f.state, err)
			}
			if err := printPlan(cmd.OutOrStdout(), res.Plan, f.output, false); err != nil {
				return err
			}
			if f.output != "text" {
				return nil
			}
			ca := in.topology.CA(args[0])
			csr := filepath.Join(f.state, filepath.FromSlash(res.Plan.Layout.CACSR(args[0])))
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s: have it signed by %s, commit the certificate to the topology and set spec.signedCertificate of CertificateAuthority %s to its path.\n",
				csr, ca.Spec.Issuer, args[0])
			return nil
		},
	}
	f.register(cmd, "text|json|yaml")
	return cmd
}
