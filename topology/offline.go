package topology

import "fmt"

// Offline reports whether a CA is imported without its key: it is trusted,
// and what it signs is signed elsewhere.
func (ca *CertificateAuthority) Offline() bool {
	return ca != nil && ca.Spec.Import != nil && ca.Spec.Import.Key == ""
}

// OfflineIssued reports whether a CA's issuer is offline: gitca makes the
// CA's key and a certificate signing request (gitca csr), and a person signs
// it with the offline key and commits the certificate (spec.signedCertificate).
func (t *Topology) OfflineIssued(ca *CertificateAuthority) bool {
	return ca != nil && ca.Spec.Import == nil && ca.Spec.Issuer != "" && t.CA(ca.Spec.Issuer).Offline()
}

// signedCertificate checks what can be checked of an offline-signed CA
// without the state: the file is there and holds a certificate. Whether it
// fits the key gitca holds, chains to the offline issuer and has the
// constraints asked for is the plan's to say, which knows the key.
func (v *validator) signedCertificate(o object, ca *CertificateAuthority) {
	s := &ca.Spec
	const field = "spec.signedCertificate"
	if v.t.OfflineIssued(ca) && s.Rotation != nil && s.Rotation.Generation > 1 {
		rf := "spec.rotation.generation"
		if o.origin.Preset != "" {
			rf = "spec.rotations." + o.name + ".generation"
		}
		v.add(o, rf, fmt.Sprintf("CA %q is signed by the offline CA %q: its next key needs a CSR signed offline too, which a staged rotation cannot wait for", o.name, s.Issuer),
			"rotate by declaring a new CertificateAuthority below the offline CA and moving the certificates to it")
	}
	if s.SignedCertificate == "" {
		return
	}
	switch {
	case s.Import != nil:
		v.add(o, field, "an imported CA brings its certificate in spec.import.certificate", "remove signedCertificate")
		return
	case s.Issuer == "":
		v.add(o, field, "a root CA signs its own certificate", "remove signedCertificate, or name the offline CA that signed it in spec.issuer")
		return
	case v.t.CA(s.Issuer) != nil && !v.t.OfflineIssued(ca):
		v.add(o, field, fmt.Sprintf("issuer %q signs here: signedCertificate is for a CA whose issuer is offline (imported without its key)", s.Issuer),
			"remove signedCertificate, or import the issuer without its key")
		return
	}
	if !v.repoFile(o, field, s.SignedCertificate) {
		return
	}
	b, err := v.readRepoFile(s.SignedCertificate)
	if err != nil {
		v.add(o, field, fmt.Sprintf("cannot read %q: %v", s.SignedCertificate, err), allowedFile)
		return
	}
	if _, err := firstCertificate(b); err != nil {
		v.add(o, field, fmt.Sprintf("%s: %v", s.SignedCertificate, err), "a PEM file whose first CERTIFICATE block is the certificate signed for gitca csr's request")
	}
}
