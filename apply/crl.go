package apply

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"

	"github.com/gitca-dev/gitca/plan"
)

// cessationOfOperation (RFC 5280 5.3.1): the certificate left the
// topology; nothing says its key was compromised.
const cessationOfOperation = 5

// crl is the revocation list a CA's record holds after the run: signed now
// with the CA's key as the plan decided it, or the stored one carried over;
// "" when the CA publishes none.
func (ap *Applier) crl(a *plan.Action, m *Material) (string, error) {
	w := ap.Plan.CRLWork(a.ID)
	switch {
	case w == nil:
		return "", nil
	case w.Sign == nil:
		return w.Keep, nil
	case m.Key == nil || m.Cert == nil:
		return "", fmt.Errorf("its revocation list is signed with its key and certificate, and the run has neither")
	}
	c := w.Sign
	tmpl := &x509.RevocationList{Number: big.NewInt(c.Number), ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate}
	for _, e := range c.Revoked {
		serial, ok := e.SerialNumber()
		if !ok {
			return "", fmt.Errorf("revocation list entry %s: serial %q is not hexadecimal", e.Object, e.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: serial, RevocationTime: e.RevokedAt, ReasonCode: cessationOfOperation})
	}
	// Signatures take crypto/rand, as sign.Certificate's do: the injected
	// randomness decides what a test compares (keys, serials), and Go ignores
	// a custom reader in signing anyway (GODEBUG=cryptocustomrand).
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, m.Cert, m.Key)
	if err != nil {
		return "", fmt.Errorf("signing its revocation list: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})), nil
}
