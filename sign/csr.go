package sign

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/gitca-dev/gitca/topology"
)

const pemCSR = "CERTIFICATE REQUEST"

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
)

// CARequestPEM is a PKCS#10 request, PEM, for a CA certificate of key:
// the subject, and as requested extensions what the topology asks the
// offline signer for: basicConstraints CA:TRUE with its pathLen, and
// keyUsage digitalSignature, keyCertSign and cRLSign, as gitca's own CAs
// carry. `openssl x509 -req -copy_extensions copy` takes them over; a
// signer's -extfile decides otherwise, and the plan checks the result.
func CARequestPEM(subject topology.Subject, pathLen *int, key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, errors.New("no key to request a certificate for")
	}
	bc := struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}{IsCA: true, MaxPathLen: -1}
	if pathLen != nil {
		if *pathLen < 0 {
			return nil, fmt.Errorf("negative path length %d", *pathLen)
		}
		bc.MaxPathLen = *pathLen
	}
	bcDER, err := asn1.Marshal(bc)
	if err != nil {
		return nil, err
	}
	// digitalSignature (bit 0), keyCertSign (5), cRLSign (6): 1000 0110, seven bits used.
	kuDER, err := asn1.Marshal(asn1.BitString{Bytes: []byte{0x86}, BitLength: 7})
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		Subject: pkixName(subject),
		ExtraExtensions: []pkix.Extension{
			{Id: oidBasicConstraints, Critical: true, Value: bcDER},
			{Id: oidKeyUsage, Critical: true, Value: kuDER},
		},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request for %q: %w", subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// ParseCertificateRequestPEM reads the first CERTIFICATE REQUEST block of
// data and checks its self-signature, which proves the requester holds the key.
func ParseCertificateRequestPEM(data []byte) (*x509.CertificateRequest, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no CERTIFICATE REQUEST PEM block found")
		}
		if block.Type != pemCSR {
			continue
		}
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			return nil, err
		}
		if err := csr.CheckSignature(); err != nil {
			return nil, fmt.Errorf("certificate request signature: %w", err)
		}
		return csr, nil
	}
}
