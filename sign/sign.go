// Package sign makes private keys and X.509 certificates, and encodes and
// parses them as PEM.
package sign

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" // #nosec G505 -- RFC 5280 key identifier, not a signature
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/gitca-dev/gitca/topology"
)

// Backdate is subtracted from "now" for NotBefore, so a certificate is already
// valid on a machine whose clock runs a little behind (cert-manager and kubeadm
// do the same).
const Backdate = 5 * time.Minute

// CertSpec is everything about a certificate that the topology decides.
type CertSpec struct {
	Subject     topology.Subject
	CA          bool             // CA certificate; Profile ignored
	PathLen     *int             // CA only; nil → no path length constraint
	Profile     topology.Profile // leafs: server | client | peer
	DNSNames    []string
	IPAddresses []net.IP
	URIs        []*url.URL
	NotBefore   time.Time // caller passes now - Backdate
	NotAfter    time.Time
}

// serialBits is the size of every serial number: 159 bits keeps the DER INTEGER
// positive within RFC 5280's 20-octet limit, as cert-manager does.
const serialBits = 159

// SignCertificate issues a certificate for pub, signed by issuer with issuerKey.
// With issuer nil the certificate is self-signed, and issuerKey must be the
// private half of pub.
//
// NotAfter is clamped to the issuer's NotAfter: a certificate never outlives its
// CA. Exactly 20 bytes are read from r (nil → crypto/rand), for the serial
// number, so a deterministic r gives a deterministic serial whatever the key
// types. The certificate bytes are then deterministic too for Ed25519 and RSA
// issuer keys, whose signatures use no randomness; ECDSA signatures draw from
// crypto/rand and the crypto packages' global source (see
// testing/cryptotest.SetGlobalRandom). A reader shared by concurrent signers
// must be safe for concurrent use, as crypto/rand is.
func SignCertificate(spec CertSpec, pub crypto.PublicKey, issuer *x509.Certificate, issuerKey crypto.Signer, r io.Reader) (*x509.Certificate, error) {
	if r == nil {
		r = rand.Reader
	}
	if pub == nil {
		return nil, errors.New("no public key to certify")
	}
	if issuerKey == nil {
		return nil, errors.New("no issuer key to sign with")
	}
	if _, err := KeyAlgorithmOf(pub); err != nil {
		return nil, fmt.Errorf("subject key: %w", err)
	}
	if issuer == nil {
		if !KeyMatches(issuerKey, pub) {
			return nil, errors.New("self-signed certificate: the signing key is not the private half of the certified public key")
		}
	} else {
		if err := checkIssuer(spec, issuer, issuerKey); err != nil {
			return nil, err
		}
	}

	notAfter := spec.NotAfter
	if issuer != nil && notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	if !notAfter.After(spec.NotBefore) {
		if issuer != nil && notAfter.Equal(issuer.NotAfter) {
			return nil, fmt.Errorf("issuer %q expires at %s, not after the new certificate's NotBefore %s",
				issuer.Subject.CommonName, issuer.NotAfter.UTC().Format(time.RFC3339), spec.NotBefore.UTC().Format(time.RFC3339))
		}
		return nil, fmt.Errorf("NotAfter %s is not after NotBefore %s",
			notAfter.UTC().Format(time.RFC3339), spec.NotBefore.UTC().Format(time.RFC3339))
	}

	serial, err := newSerial(r)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkixName(spec.Subject),
		NotBefore:             spec.NotBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		DNSNames:              spec.DNSNames,
		IPAddresses:           spec.IPAddresses,
		URIs:                  spec.URIs,
	}
	if spec.CA {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		tmpl.MaxPathLen = -1
		if spec.PathLen != nil {
			if *spec.PathLen < 0 {
				return nil, fmt.Errorf("negative path length %d", *spec.PathLen)
			}
			tmpl.MaxPathLen = *spec.PathLen
			// Without MaxPathLenZero a zero MaxPathLen means "unset"; with it, "pathlen:0".
			tmpl.MaxPathLenZero = *spec.PathLen == 0
		}
	} else {
		eku, err := extKeyUsages(spec.Profile)
		if err != nil {
			return nil, err
		}
		tmpl.ExtKeyUsage = eku
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		// RSA key exchange (TLS 1.2 RSA cipher suites) encrypts to the server's
		// key only. A client key that could decipher is inconsistent with
		// clientAuth (RFC 5280 4.2.1.12; zlint's
		// e_key_usage_and_extended_key_usage_inconsistent).
		if _, ok := pub.(*rsa.PublicKey); ok && spec.Profile != topology.ProfileClient {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}

	parent := tmpl
	if issuer != nil {
		parent = issuer
	}
	// The signer gets crypto/rand, not r, so r's consumption never depends on the
	// issuer's key type or on GODEBUG=cryptocustomrand.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, issuerKey)
	if err != nil {
		return nil, fmt.Errorf("signing %q: %w", spec.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// checkIssuer refuses to sign what would not verify: a non-CA issuer, a key that
// is not the issuer's, or a sub-CA below a CA whose path length is exhausted.
func checkIssuer(spec CertSpec, issuer *x509.Certificate, issuerKey crypto.Signer) error {
	name := issuer.Subject.CommonName
	if !issuer.BasicConstraintsValid || !issuer.IsCA {
		return fmt.Errorf("issuer %q is not a CA certificate", name)
	}
	if issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("issuer %q lacks the certificate-signing key usage", name)
	}
	if !KeyMatches(issuerKey, issuer.PublicKey) {
		return fmt.Errorf("the signing key does not match the certificate of issuer %q", name)
	}
	if spec.CA && issuer.MaxPathLen == 0 && issuer.MaxPathLenZero {
		return fmt.Errorf("issuer %q has path length 0 and cannot sign a CA", name)
	}
	return nil
}

func extKeyUsages(p topology.Profile) ([]x509.ExtKeyUsage, error) {
	switch p {
	case topology.ProfileServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil
	case topology.ProfileClient:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	case topology.ProfilePeer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, nil
	}
	return nil, fmt.Errorf("unknown certificate profile %q (want one of %v)", p, topology.Profiles)
}

func pkixName(s topology.Subject) pkix.Name {
	return pkix.Name{
		CommonName:         s.CommonName,
		Organization:       s.Organizations,
		OrganizationalUnit: s.OrganizationalUnit,
		Country:            s.Countries,
		Locality:           s.Localities,
	}
}

// newSerial reads a positive serial number of exactly serialBits bits from r.
// The top bit is forced to one, so the serial is never zero and always encodes
// to the same length; the remaining 158 bits are random.
func newSerial(r io.Reader) (*big.Int, error) {
	buf := make([]byte, (serialBits+7)/8)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading serial number randomness: %w", err)
	}
	n := new(big.Int).SetBytes(buf)
	// Keep the low serialBits bits, then set the highest of them.
	n.SetBit(n, len(buf)*8-1, 0) // 160 → 159 bits: clear bit 159
	n.SetBit(n, serialBits-1, 1)
	return n, nil
}

// subjectKeyID is RFC 5280 section 4.2.1.2 method 1: the SHA-1 of the
// subjectPublicKey BIT STRING. Go 1.25+ defaults to RFC 7093's truncated SHA-256
// for CAs and sets nothing for leafs, so gitca sets it itself to keep key
// identifiers stable across Go versions and present on every certificate.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decoding SubjectPublicKeyInfo: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes) // #nosec G401 -- identifier, not a security hash
	return sum[:], nil
}
