package sign

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/gitca-dev/gitca/internal/certpem"
)

// PEM block types gitca writes or reads.
const (
	pemCertificate  = "CERTIFICATE"
	pemPrivateKey   = "PRIVATE KEY"           // PKCS#8
	pemECPrivateKey = "EC PRIVATE KEY"        // SEC1, as `openssl ecparam -genkey` writes
	pemRSAKey       = "RSA PRIVATE KEY"       // PKCS#1, as `openssl genrsa -traditional` writes
	pemEncryptedKey = "ENCRYPTED PRIVATE KEY" // PKCS#8 with a passphrase
	pemPublicKey    = "PUBLIC KEY"            // PKIX SubjectPublicKeyInfo
)

// EncodeCertsPEM writes certificates as concatenated CERTIFICATE blocks in the
// order given, so a leaf followed by its intermediates is a valid tls.crt chain.
// Nil entries are skipped.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		if c == nil {
			continue
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: c.Raw})...)
	}
	return out
}

// EncodePrivateKeyPEM writes key as an unencrypted PKCS#8 "PRIVATE KEY" block,
// the one format kube-apiserver, etcd and openssl all read for every algorithm.
func EncodePrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, errors.New("no private key to encode")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding %T as PKCS#8: %w", key, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParsePrivateKeyPEM reads the private key in data: PKCS#8 "PRIVATE KEY", SEC1
// "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY", since imported CAs arrive in all
// three. Blocks that are not keys (such as the "EC PARAMETERS" block
// `openssl ecparam -genkey` writes first) are skipped. More than one key is an
// error rather than a guess. Errors never include key material.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	var found crypto.Signer
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			parsed any
			err    error
		)
		switch block.Type {
		case pemPrivateKey:
			parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case pemECPrivateKey:
			parsed, err = x509.ParseECPrivateKey(block.Bytes)
		case pemRSAKey:
			parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case pemEncryptedKey:
			return nil, fmt.Errorf("PEM block %d: passphrase-encrypted private keys are not supported; decrypt it first (openssl pkey)", n)
		default:
			continue
		}
		// Legacy OpenSSL encryption keeps the type and marks the block with headers.
		if _, ok := block.Headers["Proc-Type"]; ok {
			return nil, fmt.Errorf("PEM block %d: passphrase-encrypted private keys are not supported; decrypt it first (openssl pkey)", n)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		signer, ok := parsed.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("PEM block %d: unsupported private key type %T", n, parsed)
		}
		if found != nil {
			return nil, fmt.Errorf("PEM block %d: more than one private key", n)
		}
		found = signer
	}
	if found == nil {
		return nil, errors.New("no private key PEM block found (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)")
	}
	return found, nil
}

// EncodePublicKeyPEM writes pub as a PKIX "PUBLIC KEY" block, the format of
// kubeadm's sa.pub.
func EncodePublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// Fingerprint is "sha256:<hex>" of the certificate's DER, as `openssl x509
// -fingerprint -sha256` shows it (lower case, without colons).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseCertsPEM reads every CERTIFICATE block in data, in order. Other blocks are
// skipped so a file that also holds a key or parameters still yields its
// certificates; data without any certificate is an error.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	return certpem.Parse(data, 0)
}
