package secrets

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Annotations and labels gitca puts on every object it renders. They live in
// plain, MAC-covered metadata so that planning never needs to decrypt.
const (
	AnnotationObject   = "gitca.dev/object"    // "<Kind>/<name>" of the topology object
	AnnotationRole     = "gitca.dev/role"      // "primary" (the record the plan reads) or "copy" (a CA delivered into a cluster)
	AnnotationSpec     = "gitca.dev/spec"      // canonical JSON of the normalized spec that produced the certificate
	AnnotationSpecHash = "gitca.dev/spec-hash" // sha256 of AnnotationSpec
	AnnotationIssuer   = "gitca.dev/issuer"    // issuing CA's name, empty for self-signed
	AnnotationNotAfter = "gitca.dev/not-after" // for people reading a diff; the certificate is the truth
	LabelManagedBy     = "app.kubernetes.io/managed-by"
	ManagedByValue     = "gitca"
	RolePrimary        = "primary"
	RoleCopy           = "copy"
)

// Object is what the state holds for one rendered Secret: its public material and
// its metadata, read without decrypting anything.
type Object struct {
	ID          string // AnnotationObject
	Role        string
	Path        string // slash-separated, relative to the state root
	Raw         []byte // the file as stored (sealed)
	Annotations map[string]string
	// Plain holds every stringData value that is not encrypted (certificates, public keys).
	Plain map[string]string
	// Certs is tls.crt parsed (leaf first); CACerts is ca.crt parsed.
	Certs   []*x509.Certificate
	CACerts []*x509.Certificate
	// Recipients are the age recipients the file is encrypted to, sorted.
	Recipients []string
	// Problems lists what is wrong with the file's public parts (unparseable
	// certificate, missing sops block); the plan turns each into a reissue reason.
	Problems []string
}

// Cert returns the object's own certificate (tls.crt's first), or nil.
func (o *Object) Cert() *x509.Certificate {
	if o == nil || len(o.Certs) == 0 {
		return nil
	}
	return o.Certs[0]
}

// State is the public view of a state tree.
type State struct {
	Root string
	// Primary indexes the record of each topology object by its ID.
	Primary map[string]*Object
	// Copies indexes copies (CAs delivered into clusters) by path.
	Copies map[string]*Object
	// Files lists every regular file in the tree (slash paths, sorted), .git excluded;
	// the renderer deletes those it manages and no longer produces.
	Files []string
}

// ReadState reads dir without decrypting anything. A missing dir is an empty state.
func ReadState(dir string) (*State, error) {
	st := &State{Root: dir, Primary: map[string]*Object{}, Copies: map[string]*Object{}}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return st, nil
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		st.Files = append(st.Files, rel)
		if !strings.HasSuffix(rel, ".yaml") || (!strings.HasPrefix(rel, "ca/") && !strings.HasPrefix(rel, "clusters/")) {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		obj, err := parseObject(rel, raw)
		if err != nil {
			return err
		}
		if obj == nil {
			return nil
		}
		if obj.Role == RoleCopy {
			st.Copies[rel] = obj
			return nil
		}
		if prev, dup := st.Primary[obj.ID]; dup {
			// Two records for one object can only come from a hand edit or a bad merge;
			// keep the first by path and flag both so the plan rewrites them.
			prev.Problems = append(prev.Problems, fmt.Sprintf("also recorded in %s", rel))
			return nil
		}
		st.Primary[obj.ID] = obj
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading state %s: %w", dir, err)
	}
	sort.Strings(st.Files)
	return st, nil
}

// stateDoc is the part of a rendered manifest that planning reads.
type stateDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Sops       *struct {
		Age []struct {
			Recipient string `yaml:"recipient"`
		} `yaml:"age"`
		MAC string `yaml:"mac"`
	} `yaml:"sops"`
}

// parseObject returns nil for files that are not gitca objects (kustomizations,
// RBAC, bundles) — those are regenerated from the topology on every run.
func parseObject(rel string, raw []byte) (*Object, error) {
	if !bytes.Contains(raw, []byte(AnnotationObject)) {
		return nil, nil
	}
	var doc stateDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		// A file we wrote that no longer parses is drift, not a reason to stop the run.
		return &Object{ID: "", Path: rel, Raw: raw, Problems: []string{"not valid YAML: " + err.Error()}}, nil
	}
	id := doc.Metadata.Annotations[AnnotationObject]
	if id == "" || doc.Metadata.Annotations[AnnotationRole] == "" {
		// Bundles and RBAC name their object too, but are derived files, not records.
		return nil, nil
	}
	o := &Object{
		ID:          id,
		Role:        doc.Metadata.Annotations[AnnotationRole],
		Path:        rel,
		Raw:         raw,
		Annotations: doc.Metadata.Annotations,
		Plain:       map[string]string{},
	}
	for k, v := range doc.StringData {
		if !strings.HasPrefix(v, "ENC[") {
			o.Plain[k] = v
		}
	}
	if doc.Sops == nil || doc.Sops.MAC == "" {
		o.Problems = append(o.Problems, "not sealed: no sops metadata")
	} else {
		for _, a := range doc.Sops.Age {
			o.Recipients = append(o.Recipients, a.Recipient)
		}
		sort.Strings(o.Recipients)
	}
	var err error
	if v, ok := o.Plain["tls.crt"]; ok {
		if o.Certs, err = parseCerts(v); err != nil {
			o.Problems = append(o.Problems, "tls.crt: "+err.Error())
		}
	}
	if v, ok := o.Plain["ca.crt"]; ok {
		if o.CACerts, err = parseCerts(v); err != nil {
			o.Problems = append(o.Problems, "ca.crt: "+err.Error())
		}
	}
	return o, nil
}

func parseCerts(s string) ([]*x509.Certificate, error) { return ParseCertificates([]byte(s)) }

// ParseCertificates parses every CERTIFICATE block of a PEM bundle; none is an error.
func ParseCertificates(rest []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no certificate")
	}
	return out, nil
}
