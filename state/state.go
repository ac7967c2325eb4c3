// Package state reads the public material of a state tree (records,
// certificates, annotations, recipients) without decrypting anything, keeps
// the index of it as a cache, and finds private keys left in plain text.
package state

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
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
//
// Objects found unchanged in the state index (IndexPath) are not parsed: their
// summary fields come from the index and Plain/Certs/CACerts are parsed from Raw
// on first use. Use the methods, not the fields, to read those.
type Object struct {
	ID          string // AnnotationObject
	Role        string
	Path        string // slash-separated, relative to the state root
	Raw         []byte // the file as stored (sealed)
	Annotations map[string]string
	// Recipients are the age recipients the file is encrypted to, sorted.
	Recipients []string
	// Problems lists what is wrong with the file's public parts (unparseable
	// certificate, missing sops block); the plan turns each into a reissue reason.
	Problems []string
	// Verified is set once the record was opened and its MAC and key checked
	// (render.VerifyState); planning alone never opens a record.
	Verified bool
	// Summary of tls.crt's first certificate, known without parsing it.
	NotBefore, NotAfter time.Time
	AKI, SKI            []byte

	// Plain holds every stringData value that is not encrypted (certificates, public keys).
	Plain map[string]string
	// Certs is tls.crt parsed (leaf first); CACerts is ca.crt parsed.
	Certs   []*x509.Certificate
	CACerts []*x509.Certificate

	lazy bool
	once sync.Once
}

// load parses Raw once for objects that came from the index.
func (o *Object) load() {
	o.once.Do(func() {
		if !o.lazy {
			return
		}
		full, err := parseObject(o.Path, o.Raw)
		if err != nil || full == nil {
			return
		}
		o.Plain, o.Certs, o.CACerts = full.Plain, full.Certs, full.CACerts
	})
}

// Cert returns the object's own certificate (tls.crt's first), or nil.
func (o *Object) Cert() *x509.Certificate {
	if c := o.CertChain(); len(c) > 0 {
		return c[0]
	}
	return nil
}

// CertChain is tls.crt parsed, leaf first.
func (o *Object) CertChain() []*x509.Certificate {
	if o == nil {
		return nil
	}
	o.load()
	return o.Certs
}

// CAChain is ca.crt parsed.
func (o *Object) CAChain() []*x509.Certificate {
	if o == nil {
		return nil
	}
	o.load()
	return o.CACerts
}

// PlainValues are the stringData values that are not encrypted.
func (o *Object) PlainValues() map[string]string {
	if o == nil {
		return nil
	}
	o.load()
	return o.Plain
}

// HasCert reports whether tls.crt holds a certificate, without parsing it when the index knows.
func (o *Object) HasCert() bool {
	if o.lazy {
		return !o.NotAfter.IsZero()
	}
	return len(o.Certs) > 0
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
	// Parsed counts the records (not bundles, RBAC or kustomizations) that were
	// parsed because the index did not vouch for them.
	Parsed int
	// Unvouched lists records whose bytes differ from what the index says gitca
	// wrote: hand edits or merges. Checks that otherwise look only at what a
	// run changes look at these too. Empty when there is no index.
	Unvouched []string
	// Indexed lists the paths the index on disk has an entry for, true when
	// the entry's hash matches the file; nil when there is no readable index.
	// The plan compares it with the records a run keeps to know whether the
	// index would be rewritten.
	Indexed map[string]bool

	byPath map[string]*Object
}

// Options say where a state tree keeps its index and which directories are
// not part of it; the plan package owns these names (plan.StateOptions).
type Options struct {
	IndexPath string
	SkipDir   func(name string) bool
}

// ReadFile returns the bytes of a file of the tree: a record as it was read,
// anything else from disk.
func (st *State) ReadFile(p string) ([]byte, error) {
	if o := st.At(p); o != nil {
		return o.Raw, nil
	}
	return os.ReadFile(filepath.Join(st.Root, filepath.FromSlash(p)))
}

// Has reports whether the tree holds a file at a path.
func (st *State) Has(p string) bool {
	_, ok := slices.BinarySearch(st.Files, p)
	return ok
}

// At returns the record stored at a path, or nil.
func (st *State) At(path string) *Object { return st.byPath[path] }

// Read reads dir without decrypting anything. A missing dir is an empty state.
// Every YAML file is a candidate: records name their object and role in their
// own annotations, wherever the layout put them. Records whose bytes match
// the state index are taken from it without parsing; the rest are parsed in
// parallel.
func Read(dir string, opt Options) (*State, error) {
	st := &State{Root: dir, Primary: map[string]*Object{}, Copies: map[string]*Object{}, byPath: map[string]*Object{}}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return st, nil
	}
	var candidates []string
	err := walkFiles(dir, opt.SkipDir, func(rel string) error {
		st.Files = append(st.Files, rel)
		if strings.HasSuffix(rel, ".yaml") {
			candidates = append(candidates, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading state %s: %w", dir, err)
	}
	sort.Strings(st.Files)
	index := readIndex(dir, opt.IndexPath)
	objs := make([]*Object, len(candidates))
	errs := make([]error, len(candidates))
	parsed := make([]bool, len(candidates))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rel := candidates[i]
				raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
				if err != nil {
					errs[i] = err
					continue
				}
				if e, ok := index[rel]; ok && e.SHA256 == sha256Hex(raw) {
					objs[i] = e.object(raw)
					continue
				}
				parsed[i] = true
				objs[i], errs[i] = parseObject(rel, raw)
			}
		}()
	}
	for i := range candidates {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, obj := range objs {
		if errs[i] != nil {
			return nil, fmt.Errorf("reading state %s: %w", dir, errs[i])
		}
		if obj == nil {
			continue
		}
		if parsed[i] {
			st.Parsed++
			if index != nil {
				st.Unvouched = append(st.Unvouched, obj.Path)
			}
		}
		st.byPath[obj.Path] = obj
		if obj.Role == RoleCopy {
			st.Copies[obj.Path] = obj
			continue
		}
		if prev, dup := st.Primary[obj.ID]; dup {
			// Two records for one object can only come from a hand edit or a bad merge;
			// keep the first by path and flag it so the plan rewrites it.
			prev.Problems = append(prev.Problems, fmt.Sprintf("also recorded in %s", obj.Path))
			continue
		}
		st.Primary[obj.ID] = obj
	}
	if index != nil {
		st.Indexed = make(map[string]bool, len(index))
		for p := range index {
			st.Indexed[p] = false
		}
		for i, obj := range objs {
			if obj != nil && !parsed[i] {
				st.Indexed[obj.Path] = true
			}
		}
	}
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
		return nil, nil // not ours to judge: a record that does not parse cannot name its object
	}
	plain := map[string]string{}
	for k, v := range doc.StringData {
		if !strings.HasPrefix(v, "ENC[") {
			plain[k] = v
		}
	}
	sealed := doc.Sops != nil && doc.Sops.MAC != ""
	var recipients []string
	if sealed {
		for _, a := range doc.Sops.Age {
			recipients = append(recipients, a.Recipient)
		}
		sort.Strings(recipients)
	}
	return newObject(rel, raw, doc.Metadata.Annotations, plain, recipients, sealed), nil
}

// NewRecord is the record ReadState would read back from a file the run has
// just sealed (raw, from doc, to recipients), made without parsing raw: the
// index of a render is built from it. It is nil, as for any file that is not
// a record, when doc names no object and role.
func NewRecord(path string, raw []byte, doc secrets.Doc, recipients []string) (*Object, error) {
	meta, _ := doc["metadata"].(secrets.Doc)
	ann, _ := meta["annotations"].(map[string]string)
	data, _ := doc["stringData"].(map[string]string)
	rcp, err := secrets.NormalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	plain := make(map[string]string, len(data))
	for k, v := range data {
		if !secrets.IsEncryptedKey(k) {
			plain[k] = v
		}
	}
	return newObject(path, raw, maps.Clone(ann), plain, rcp, true), nil
}

// newObject is a record from its public parts; nil when the annotations name
// no object and role (bundles and RBAC name their object too, but are derived
// files, not records).
func newObject(rel string, raw []byte, annotations, plain map[string]string, recipients []string, sealed bool) *Object {
	id := annotations[AnnotationObject]
	if id == "" || annotations[AnnotationRole] == "" {
		return nil
	}
	o := &Object{
		ID:          id,
		Role:        annotations[AnnotationRole],
		Path:        rel,
		Raw:         raw,
		Annotations: annotations,
		Recipients:  recipients,
		Plain:       plain,
	}
	if !sealed {
		o.Problems = append(o.Problems, "not sealed: no sops metadata")
	}
	var err error
	if v, ok := o.Plain["tls.crt"]; ok {
		if o.Certs, err = sign.ParseCertsPEM([]byte(v)); err != nil {
			o.Problems = append(o.Problems, "tls.crt: "+err.Error())
		} else {
			c := o.Certs[0]
			o.NotBefore, o.NotAfter, o.AKI, o.SKI = c.NotBefore.UTC(), c.NotAfter.UTC(), c.AuthorityKeyId, c.SubjectKeyId
		}
	}
	if v, ok := o.Plain["ca.crt"]; ok {
		if o.CACerts, err = sign.ParseCertsPEM([]byte(v)); err != nil {
			o.Problems = append(o.Problems, "ca.crt: "+err.Error())
		}
	}
	return o
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// walkFiles calls fn with the slash path, relative to dir, of every regular
// file below dir, skipping the directories skip names: what a state tree is
// made of.
func walkFiles(dir string, skip func(name string) bool, fn func(rel string) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && skip != nil && skip(d.Name()) {
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
		return fn(filepath.ToSlash(rel))
	})
}
