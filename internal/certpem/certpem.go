// Package certpem walks the CERTIFICATE blocks of PEM data: the one loop that
// the topology's certificate files, the signer and the state reader share, so
// that all three accept and refuse the same files.
package certpem

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"iter"
)

// ErrNone is returned when data holds no CERTIFICATE block at all.
var ErrNone = errors.New("no CERTIFICATE PEM block found")

// Blocks yields the DER of each CERTIFICATE block in data with its position
// among all of data's PEM blocks (from 1). Other blocks are skipped, so a file
// that also holds a key or parameters still yields its certificates.
func Blocks(data []byte) iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		for n := 1; ; n++ {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				return
			}
			if block.Type == "CERTIFICATE" && !yield(n, block.Bytes) {
				return
			}
		}
	}
}

// Parse reads up to max certificates (all when max is 0), in order. A block
// that is not a valid certificate is an error naming its position; data
// without any certificate is ErrNone.
func Parse(data []byte, max int) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n, der := range Blocks(data) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d is not a valid certificate: %w", n, err)
		}
		certs = append(certs, c)
		if max > 0 && len(certs) == max {
			break
		}
	}
	if len(certs) == 0 {
		return nil, ErrNone
	}
	return certs, nil
}
