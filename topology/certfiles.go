package topology

import (
	"crypto/x509"
	"fmt"

	"github.com/gitca-dev/gitca/internal/certpem"
)

// importedCertificate applies, at plan time, the checks the renderer applies
// to an imported CA when it signs, for everything that needs no private key:
// a plan must not accept what a render then refuses.
func (v *validator) importedCertificate(o object, field, p string) {
	b, err := v.readRepoFile(p)
	if err != nil {
		v.add(o, field, fmt.Sprintf("cannot read %q: %v", p, err), allowedFile)
		return
	}
	c, err := firstCertificate(b)
	if err != nil {
		v.add(o, field, fmt.Sprintf("%s: %v", p, err), "a PEM file whose first CERTIFICATE block is the CA certificate")
		return
	}
	const root = "a self-signed root CA certificate"
	if !c.IsCA || !c.BasicConstraintsValid {
		v.add(o, field, fmt.Sprintf("%s is not a CA certificate (basicConstraints CA:TRUE required)", p), root)
		return
	}
	if c.CheckSignatureFrom(c) != nil || c.Subject.String() != c.Issuer.String() {
		v.add(o, field, fmt.Sprintf("%s is not self-signed; only a root CA can be imported, not an intermediate", p),
			root+"; an intermediate is made by gitca (issuer: <its CA>)")
	}
}

// firstCertificate is the renderer's reading of an imported certificate: the
// first CERTIFICATE block, other blocks skipped.
func firstCertificate(b []byte) (*x509.Certificate, error) {
	certs, err := certpem.Parse(b, 1)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// bundleFile checks a TrustBundle's PEM file as the renderer reads it.
func (v *validator) bundleFile(o object, field, p string) {
	b, err := v.readRepoFile(p)
	if err != nil {
		v.add(o, field, fmt.Sprintf("cannot read %q: %v", p, err), allowedFile)
		return
	}
	if _, err := certpem.Parse(b, 0); err != nil {
		v.add(o, field, fmt.Sprintf("%s: %v", p, err), "a PEM file of one or more CERTIFICATE blocks")
	}
}
