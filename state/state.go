// Package state reads the public material of a state tree (records,
// certificates, annotations, recipients) without decrypting anything, keeps
// the index of it as a cache, and finds private keys left in plain text.
package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitca-dev/gitca/secrets"
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
// its metadata, read without decrypting anything. Every field is derived from
// the file's bytes on every read; the state index is never trusted for them.
type Object struct {
	ID          string // AnnotationObject
	Role        string
	Path        string // slash-separated, relative to the state root
	Raw         []byte // the file as stored (sealed)
	Annotations map[string]string
	// Name and Namespace are the Secret's metadata: two records claiming one
	// Secret, or a record swapped for another, show here.
	Name, Namespace string
	// Type is the Secret's type (kubernetes.io/tls, Opaque).
	Type string
	// Keys lists every stringData key, sorted, encrypted or not: a value
	// gitca does not write shows here without decrypting it.
	Keys []string
	// Unexpected lists the fields outside what a gitca record holds (another
	// kind, a data: map, extra labels or metadata, sops keys other than age),
	// sorted. The plan rewrites a record with any.
	Unexpected []string
	// Recipients are the age recipients the file is encrypted to, sorted.
	Recipients []string
	// Problems lists what is wrong with the file's public parts (unparseable
	// certificate, missing sops block); the plan turns each into a reissue reason.
	Problems []string
	// Verified is set once the record was opened and its MAC and key checked
	// (render.VerifyState); planning alone never opens a record.
	Verified bool
	// Summary of tls.crt's first certificate.
	NotBefore, NotAfter time.Time
	AKI, SKI            []byte

	// Plain holds every stringData value that is not encrypted (certificates, public keys).
	Plain map[string]string
	// Certs is tls.crt parsed (leaf first); CACerts is ca.crt parsed.
	Certs   []*x509.Certificate
	CACerts []*x509.Certificate

	// A read checks every certificate and keeps only the summary: ten
	// thousand parsed certificates would double a no-op plan's memory, and
	// planning needs few of them. Plain, Certs and CACerts are parsed again
	// from Raw on first use (the methods); hasCert remembers that there is one.
	lazy    bool
	hasCert bool
	once    sync.Once
}

// load parses Raw again for an object read without keeping its values.
func (o *Object) load() {
	o.once.Do(func() {
		if !o.lazy {
			return
		}
		full, _, err := parseObject(o.Path, o.Raw, &certMemo{}, nil, true)
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

// HasCert reports whether tls.crt holds a certificate.
func (o *Object) HasCert() bool {
	if o.lazy {
		return o.hasCert
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
	// Parsed counts the records the index did not vouch for: every record is
	// parsed on every read, these are the ones whose index entry is missing
	// or is not what their bytes say.
	Parsed int
	// Unvouched lists records whose index entry is not what their bytes give:
	// hand edits, merges, a rewritten index. Checks that otherwise look only
	// at what a run changes look at these too. Empty when there is no index.
	Unvouched []string
	// Indexed lists the paths the index on disk has an entry for, true when
	// the entry is exactly what the file's bytes give; nil when there is no
	// readable index. The plan compares it with the records a run keeps to
	// know whether the index would be rewritten.
	Indexed map[string]bool
	// Unreadable names the files that look like records (they carry the
	// gitca.dev/object annotation) but cannot be read as one, with why. The
	// plan refuses to replace such a file at a CA's path by a new CA.
	Unreadable map[string]string

	byPath map[string]*Object
	files  map[string][]byte // every file as read, records included
}

// Options say where a state tree keeps its index and which directories are
// not part of it; the plan package owns these names (plan.StateOptions).
type Options struct {
	IndexPath string
	SkipDir   func(name string) bool
}

// ReadFile returns the bytes of a file of the tree as Read read them. A file
// Read did not see is an fs.ErrNotExist: nothing is read from the tree
// after Read, so a run works on one snapshot.
func (st *State) ReadFile(p string) ([]byte, error) {
	if b, ok := st.files[p]; ok {
		return b, nil
	}
	return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrNotExist}
}

// Has reports whether the tree holds a file at a path.
func (st *State) Has(p string) bool {
	_, ok := slices.BinarySearch(st.Files, p)
	return ok
}

// At returns the record stored at a path, or nil.
func (st *State) At(path string) *Object { return st.byPath[path] }

// PlaintextKeysError is a state tree that holds private keys in plain text.
// It locates each one and never quotes it.
type PlaintextKeysError struct {
	Findings []Finding
}

func (e *PlaintextKeysError) Error() string {
	lines := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		lines[i] = "  " + f.String()
	}
	return fmt.Sprintf("%d private key(s) in plain text in the state; remove them (and rotate them: they were readable to anyone with the repository):\n%s",
		len(e.Findings), strings.Join(lines, "\n"))
}

// Read is ReadContext without cancellation.
func Read(dir string, opt Options) (*State, error) {
	return ReadContext(context.Background(), dir, opt)
}

// ReadContext reads dir without decrypting anything. A missing dir is an
// empty state. Every YAML file is a candidate: records name their object and
// role in their own annotations, wherever the layout put them.
//
// Nothing in the tree is trusted: a symbolic link or a special file anywhere
// is an error naming it; a file over secrets.MaxFileSize (the index over
// MaxIndexSize) or a record over secrets.StateYAMLLimits is an error naming
// the file and the limit; a private key in plain text in any file is a
// PlaintextKeysError. Every record's summary is derived from its bytes; the
// index only tells which records gitca wrote as they are (Unvouched,
// Indexed). Files are read and parsed in parallel, and a cancelled ctx stops
// the read within a file's time.
func ReadContext(ctx context.Context, dir string, opt Options) (*State, error) {
	st := &State{Root: dir, Primary: map[string]*Object{}, Copies: map[string]*Object{}, byPath: map[string]*Object{},
		Unreadable: map[string]string{}, files: map[string][]byte{}}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("reading state %s: %w", dir, err)
	}
	defer root.Close()
	tr := newTreeReader(root)
	defer tr.Close()
	sizeLimit := func(rel string) int64 {
		if rel == opt.IndexPath {
			return MaxIndexSize
		}
		return secrets.MaxFileSize
	}
	if err := walkTree(ctx, root, opt.SkipDir, false, sizeLimit, func(rel string) error {
		st.Files = append(st.Files, rel)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading state %s: %w", dir, err)
	}
	sort.Strings(st.Files)

	var index map[string][]byte
	if _, ok := slices.BinarySearch(st.Files, opt.IndexPath); ok && opt.IndexPath != "" {
		raw, err := tr.readFile(opt.IndexPath, MaxIndexSize)
		if err != nil {
			return nil, fmt.Errorf("reading state %s: %s: %w", dir, opt.IndexPath, err)
		}
		st.files[opt.IndexPath] = raw
		index = indexLines(raw)
	}

	type result struct {
		raw        []byte
		obj        *Object
		vouched    bool
		unreadable string
		findings   []Finding
		err        error
	}
	results := make([]result, len(st.Files))
	memo := &certMemo{}
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lines []fastLine
			var line []byte
			for i := range next {
				rel := st.Files[i]
				r := &results[i]
				if rel == opt.IndexPath {
					r.findings = scanBytes(st.files[rel])
					continue
				}
				if r.err = ctx.Err(); r.err != nil {
					continue
				}
				if r.raw, r.err = tr.readFile(rel, secrets.MaxFileSize); r.err != nil {
					continue
				}
				if strings.HasSuffix(rel, ".yaml") {
					r.obj, r.unreadable, r.err = parseObject(rel, r.raw, memo, &lines, false)
					if want, ok := index[rel]; ok && r.obj != nil {
						line = appendEntry(line[:0], entryOf(r.obj))
						r.vouched = bytes.Equal(line, want)
					}
				}
				// Every file, vouched for or not: an index entry is a claim
				// anyone can write, and a render writes what the topology
				// says (an annotation holding a key) without scanning it.
				r.findings = scanBytes(r.raw)
			}
		}()
	}
	for i := range st.Files {
		next <- i
	}
	close(next)
	wg.Wait()

	var leaks []Finding
	for i, r := range results {
		rel := st.Files[i]
		if r.err != nil {
			if errors.Is(r.err, context.Canceled) || errors.Is(r.err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("reading state %s: %w", dir, r.err)
			}
			var se *SymlinkError
			var ne *NotRegularError
			if errors.As(r.err, &se) || errors.As(r.err, &ne) {
				return nil, fmt.Errorf("reading state %s: %w", dir, r.err) // they name the file
			}
			return nil, fmt.Errorf("reading state %s: %s: %w", dir, rel, r.err)
		}
		for _, f := range r.findings {
			f.Path = rel
			leaks = append(leaks, f)
		}
		if rel == opt.IndexPath {
			continue
		}
		st.files[rel] = r.raw
		if r.unreadable != "" {
			st.Unreadable[rel] = r.unreadable
		}
		obj := r.obj
		if obj == nil {
			continue
		}
		if !r.vouched {
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
	if len(leaks) > 0 {
		return nil, fmt.Errorf("reading state %s: %w", dir, &PlaintextKeysError{Findings: leaks})
	}
	if index != nil {
		st.Indexed = make(map[string]bool, len(index))
		for p := range index {
			st.Indexed[p] = false
		}
		for i, r := range results {
			if r.obj != nil && r.vouched {
				st.Indexed[st.Files[i]] = true
			}
		}
	}
	return st, nil
}

// certMemo parses each distinct CA certificate once per read: ten thousand
// leafs share a handful of issuer and root certificates in their chains.
type certMemo struct {
	b64, der sync.Map // a PEM body, or DER → parsedCert
}

type parsedCert struct {
	cert *x509.Certificate
	err  error
}

func (m *certMemo) parse(memo *sync.Map, key string, der func() ([]byte, bool)) (parsedCert, bool) {
	if v, ok := memo.Load(key); ok {
		return v.(parsedCert), true
	}
	b, ok := der()
	if !ok {
		return parsedCert{}, false
	}
	var pc parsedCert
	pc.cert, pc.err = x509.ParseCertificate(b)
	if pc.err == nil && pc.cert.IsCA {
		// Only issuers recur; a leaf is in one record.
		memo.Store(key, pc)
	}
	return pc, true
}

// parseCertsPEM is sign.ParseCertsPEM through the memo. The PEM gitca writes
// (pem.EncodeToMemory of CERTIFICATE blocks and nothing else) is cut at its
// markers, and only bodies not seen before are decoded; any other text goes
// through pem.Decode.
func (m *certMemo) parseCertsPEM(data string) ([]*x509.Certificate, error) {
	if bodies, ok := canonicalPEMBodies(data); ok {
		certs := make([]*x509.Certificate, 0, len(bodies))
		for n, body := range bodies {
			pc, ok := m.parse(&m.b64, body, func() ([]byte, bool) {
				b, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(body, "\n", ""))
				return b, err == nil
			})
			if !ok {
				return m.parseAnyPEM([]byte(data)) // pem.Decode skips what does not decode
			}
			if pc.err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", n+1, pc.err)
			}
			certs = append(certs, pc.cert)
		}
		return certs, nil
	}
	return m.parseAnyPEM([]byte(data))
}

func (m *certMemo) parseAnyPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		pc, _ := m.parse(&m.der, string(block.Bytes), func() ([]byte, bool) { return block.Bytes, true })
		if pc.err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, pc.err)
		}
		certs = append(certs, pc.cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return certs, nil
}

const (
	pemBeginCert = "-----BEGIN CERTIFICATE-----\n"
	pemEndCert   = "-----END CERTIFICATE-----\n"
)

// canonicalPEMBodies cuts PEM text in pem.EncodeToMemory's form into its
// CERTIFICATE blocks' bodies (with their line breaks): no headers, nothing
// between or after blocks. A body that then decodes as base64 is what
// pem.Decode would decode it to; one that does not (a header, spaces, a
// stray marker) sends the whole text to pem.Decode.
func canonicalPEMBodies(s string) ([]string, bool) {
	var out []string
	for len(s) > 0 {
		if !strings.HasPrefix(s, pemBeginCert) {
			return nil, false
		}
		s = s[len(pemBeginCert):]
		end := strings.Index(s, pemEndCert)
		if end <= 0 || s[end-1] != '\n' {
			return nil, false
		}
		out = append(out, s[:end])
		s = s[end+len(pemEndCert):]
	}
	return out, len(out) > 0
}

// parseObject derives a record from a file. It returns a nil object for
// files that are not records (kustomizations, RBAC, bundles, anything
// else), with why when the file carries the object annotation but cannot
// be read as a record. err is set for limits only, which stop the read.
// With keep, the object keeps its values and parsed certificates.
// lines is scratch space for the parser, reused by the caller; may be nil.
func parseObject(rel string, raw []byte, memo *certMemo, lines *[]fastLine, keep bool) (obj *Object, unreadable string, err error) {
	if !bytes.Contains(raw, []byte(AnnotationObject)) {
		return nil, "", nil
	}
	defer func() {
		// The parsers see untrusted bytes; a panic in one is this file's problem.
		if r := recover(); r != nil {
			obj, unreadable, err = nil, fmt.Sprintf("parsing it failed (%v)", r), nil
		}
	}()
	doc, docs, err := recordTree(raw, lines)
	var lim *secrets.LimitError
	switch {
	case errors.As(err, &lim):
		return nil, "", err
	case err != nil:
		return nil, err.Error(), nil
	}
	rec, why := recordOf(doc)
	if why != "" {
		return nil, why, nil
	}
	if rec == nil {
		return nil, "", nil
	}
	o := newObject(rel, raw, rec, memo, keep)
	if docs > 1 {
		// kustomize would apply the other documents too: whatever they are,
		// they are not what the plan shows.
		o.Problems = append(o.Problems, fmt.Sprintf("%d YAML documents, where a record is one Secret", docs))
	}
	return o, "", nil
}

// record is what a record's plain tree says, before its certificates are parsed.
type record struct {
	annotations, plain map[string]string
	name, namespace    string
	typ                string
	keys               []string
	unexpected         []string
	recipients         []string
	sealed             bool
}

// The fields a record may hold, by where; anything else is Unexpected.
var (
	recordFields   = []string{"apiVersion", "kind", "metadata", "sops", "stringData", "type"}
	metadataFields = []string{"annotations", "labels", "name", "namespace"}
	sopsFields     = []string{"age", "encrypted_regex", "lastmodified", "mac", "version"}
	ageFields      = []string{"enc", "recipient"}
)

// recordOf reads a record's parts from its plain tree; nil when the tree
// names no object and role (not a record), why when it is one but a part
// has the wrong shape.
func recordOf(doc map[string]any) (*record, string) {
	meta, ok := mapOrNil(doc["metadata"])
	if !ok {
		return nil, "metadata is not a mapping"
	}
	ann, ok := stringMap(meta["annotations"])
	if !ok {
		return nil, "metadata.annotations is not a mapping of strings"
	}
	if ann[AnnotationObject] == "" || ann[AnnotationRole] == "" {
		return nil, ""
	}
	rec := &record{annotations: ann}
	var unexpected []string
	str := func(m map[string]any, key, field string) string {
		v, ok := m[key].(string)
		if !ok && m[key] != nil {
			unexpected = append(unexpected, field+" (not a string)")
		}
		return v
	}
	rec.name, rec.namespace = str(meta, "name", "metadata.name"), str(meta, "namespace", "metadata.namespace")
	rec.typ = str(doc, "type", "type")
	if k := str(doc, "kind", "kind"); k != "Secret" {
		unexpected = append(unexpected, fmt.Sprintf("kind %s (not Secret)", orEmpty(k)))
	}
	if v := str(doc, "apiVersion", "apiVersion"); v != "v1" {
		unexpected = append(unexpected, fmt.Sprintf("apiVersion %s (not v1)", orEmpty(v)))
	}
	unexpected = append(unexpected, extraFields(doc, recordFields, "")...)
	unexpected = append(unexpected, extraFields(meta, metadataFields, "metadata.")...)
	labels, ok := stringMap(meta["labels"])
	if !ok {
		unexpected = append(unexpected, "metadata.labels (not a mapping of strings)")
	}
	for k, v := range labels {
		if k != LabelManagedBy || v != ManagedByValue {
			unexpected = append(unexpected, "metadata.labels."+k)
		}
	}
	data, ok := stringMap(doc["stringData"])
	if !ok {
		return nil, "stringData is not a mapping of strings"
	}
	rec.plain = map[string]string{}
	for k, v := range data {
		rec.keys = append(rec.keys, k)
		if !strings.HasPrefix(v, "ENC[") {
			rec.plain[k] = v
		}
	}
	sort.Strings(rec.keys)
	if sops, ok := doc["sops"].(map[string]any); ok {
		mac, _ := sops["mac"].(string)
		rec.sealed = mac != ""
		unexpected = append(unexpected, extraFields(sops, sopsFields, "sops.")...)
		age, _ := sops["age"].([]any)
		if _, isList := sops["age"].([]any); !isList && sops["age"] != nil {
			unexpected = append(unexpected, "sops.age (not a list)")
		}
		for i, a := range age {
			m, ok := a.(map[string]any)
			r, _ := m["recipient"].(string)
			if !ok || r == "" {
				unexpected = append(unexpected, fmt.Sprintf("sops.age[%d] (no recipient)", i))
				continue
			}
			unexpected = append(unexpected, extraFields(m, ageFields, fmt.Sprintf("sops.age[%d].", i))...)
			rec.recipients = append(rec.recipients, r)
		}
		sort.Strings(rec.recipients)
	} else if doc["sops"] != nil {
		unexpected = append(unexpected, "sops (not a mapping)")
	}
	sort.Strings(unexpected)
	rec.unexpected = slices.Compact(unexpected)
	return rec, ""
}

func orEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func mapOrNil(v any) (map[string]any, bool) {
	if v == nil {
		return map[string]any{}, true
	}
	m, ok := v.(map[string]any)
	return m, ok
}

// stringMap reads a mapping of strings; null values read as "".
func stringMap(v any) (map[string]string, bool) {
	m, ok := mapOrNil(v)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case nil:
			out[k] = ""
		default:
			return nil, false
		}
	}
	return out, true
}

// extraFields lists the keys of m not in allowed (sorted), prefixed.
func extraFields(m map[string]any, allowed []string, prefix string) []string {
	var out []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			out = append(out, prefix+k)
		}
	}
	return out
}

// NewRecord is the record ReadState would read back from a file the run has
// just sealed (raw, from doc, to recipients), made without parsing raw: the
// index of a render is built from it. It is nil, as for any file that is not
// a record, when doc names no object and role.
func NewRecord(path string, raw []byte, doc secrets.Doc, recipients []string) (*Object, error) {
	rcp, err := secrets.NormalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	tree := plainOfDoc(doc).(map[string]any)
	age := make([]any, len(rcp))
	for i, r := range rcp {
		age[i] = map[string]any{"recipient": r}
	}
	// What sealing adds; its values other than the recipients are not read.
	tree["sops"] = map[string]any{"age": age, "mac": "sealed"}
	rec, why := recordOf(tree)
	if why != "" {
		return nil, fmt.Errorf("%s: %s", path, why)
	}
	if rec == nil {
		return nil, nil
	}
	return newObject(path, raw, rec, &certMemo{}, true), nil
}

// plainOfDoc is a secrets.Doc as the plain tree parsing its YAML would give.
func plainOfDoc(v any) any {
	switch v := v.(type) {
	case secrets.Doc:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = plainOfDoc(x)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = x
		}
		return out
	}
	return v
}

// newObject is a record from its parts, its certificates parsed, and kept
// only with keep.
func newObject(rel string, raw []byte, rec *record, memo *certMemo, keep bool) *Object {
	ann := rec.annotations
	o := &Object{
		ID:          ann[AnnotationObject],
		Role:        ann[AnnotationRole],
		Path:        rel,
		Raw:         raw,
		Annotations: ann,
		Name:        rec.name,
		Namespace:   rec.namespace,
		Type:        rec.typ,
		Keys:        rec.keys,
		Unexpected:  rec.unexpected,
		Recipients:  rec.recipients,
		Plain:       rec.plain,
	}
	if !rec.sealed {
		o.Problems = append(o.Problems, "not sealed: no sops metadata")
	}
	var err error
	if v, ok := o.Plain["tls.crt"]; ok {
		if o.Certs, err = memo.parseCertsPEM(v); err != nil {
			o.Problems = append(o.Problems, "tls.crt: "+err.Error())
		} else {
			c := o.Certs[0]
			o.NotBefore, o.NotAfter, o.AKI, o.SKI = c.NotBefore.UTC(), c.NotAfter.UTC(), c.AuthorityKeyId, c.SubjectKeyId
		}
	}
	if v, ok := o.Plain["ca.crt"]; ok {
		if o.CACerts, err = memo.parseCertsPEM(v); err != nil {
			o.Problems = append(o.Problems, "ca.crt: "+err.Error())
		}
	}
	if !keep {
		o.hasCert = len(o.Certs) > 0
		o.Plain, o.Certs, o.CACerts, o.lazy = nil, nil, nil, true
		// The key ids are slices of the certificate's DER: keep them only.
		o.AKI, o.SKI = bytes.Clone(o.AKI), bytes.Clone(o.SKI)
	}
	return o
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
