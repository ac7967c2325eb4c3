// Package secrets seals and opens manifests with SOPS and age, in process:
// private values encrypted, everything else readable and MAC-covered; and it
// loads age identities and recipients.
package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/stores"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"github.com/getsops/sops/v3/version"
	"go.yaml.in/yaml/v3"
)

// EncryptedRegex selects the values SOPS encrypts: private keys and kubeconfigs
// (which embed a client key). Everything else — certificates, metadata,
// annotations — stays readable so that planning and code review need no key,
// yet is still covered by the SOPS MAC.
const EncryptedRegex = `^(tls\.key|ca\.key|sa\.key|.+\.key|kubeconfig)$`

var (
	// ErrMACMismatch means a sealed file fails its integrity check: a readable
	// value, a key name or a ciphertext was changed without re-sealing.
	ErrMACMismatch = errors.New("sops MAC mismatch: the file was changed after it was sealed")
	// ErrNotSealed means the input carries no sops metadata.
	ErrNotSealed = errors.New("not a sops-sealed file")
	// ErrNoMatchingIdentity means none of the given identities is a recipient of the file.
	ErrNoMatchingIdentity = errors.New("no given age identity opens the file")
)

// Indent 0 selects sops' default (4), so that a later `sops edit` by a person
// does not reformat the whole file.
var (
	yamlStore = sopsyaml.NewStore(&config.YAMLStoreConfig{})
	jsonStore = sopsjson.NewStore(&config.JSONStoreConfig{})
)

// Seal encrypts the private values of a one-document YAML manifest to the age
// recipients, in process, with a fresh data key.
func Seal(plain []byte, recipients []string, at time.Time) ([]byte, error) {
	branches, err := loadPlain(plain)
	if err != nil {
		return nil, err
	}
	return sealBranches(branches, recipients, at)
}

// SealDoc is Seal for a manifest held as data: the same bytes as sealing its
// sigs.k8s.io/yaml rendering, without the YAML round trip.
func SealDoc(doc Doc, recipients []string, at time.Time) ([]byte, error) {
	branches, err := docBranches(doc)
	if err != nil {
		return nil, err
	}
	return sealBranches(branches, recipients, at)
}

func sealBranches(branches sops.TreeBranches, recipients []string, at time.Time) ([]byte, error) {
	rcp, err := NormalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	group := make(sops.KeyGroup, 0, len(rcp))
	for _, r := range rcp {
		mk, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			// Not quoted: a secret key put in a recipient list by mistake
			// must not reach a log.
			return nil, CheckRecipients("sealing", rcp)
		}
		group = append(group, mk)
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, fmt.Errorf("generating the data key: %w", err)
	}
	for _, k := range group {
		if err := k.Encrypt(dataKey); err != nil {
			return nil, fmt.Errorf("wrapping the data key for %s: %w", k.ToString(), err)
		}
	}
	tree := sops.Tree{Branches: branches, Metadata: newMetadata([]sops.KeyGroup{group}, 0)}
	return encryptAndEmit(&tree, dataKey, aes.NewCipher(), at)
}

// Reseal is Seal for a changed file that was sealed before: it reuses prev's
// data key and leaves every value whose plaintext did not change with its exact
// previous ciphertext (what `sops edit` does with its IV stash), so a git diff
// shows only the values that changed. ids must open prev. An unchanged
// plaintext returns prev itself. If the recipient set changed, a new data key
// is made, so a removed recipient cannot read anything written from now on.
func Reseal(plain, prev []byte, recipients []string, ids Identities, at time.Time) (_ []byte, err error) {
	defer recoverInto(&err)
	branches, err := loadPlain(plain)
	if err != nil {
		return nil, err
	}
	return resealBranches(branches, prev, recipients, ids, at)
}

// ResealDoc is Reseal for a manifest held as data (see SealDoc).
func ResealDoc(doc Doc, prev []byte, recipients []string, ids Identities, at time.Time) (_ []byte, err error) {
	defer recoverInto(&err)
	branches, err := docBranches(doc)
	if err != nil {
		return nil, err
	}
	return resealBranches(branches, prev, recipients, ids, at)
}

func resealBranches(branches sops.TreeBranches, prev []byte, recipients []string, ids Identities, at time.Time) ([]byte, error) {
	rcp, err := NormalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	old, err := loadSealed(prev)
	if err != nil {
		return nil, fmt.Errorf("previous file: %w", err)
	}
	if !sameRecipients(old, rcp) {
		return sealBranches(branches, rcp, at) // nothing to decrypt: nothing is kept
	}
	op, err := openTree(prev, old, ids)
	if err != nil {
		return nil, fmt.Errorf("previous file: %w", err)
	}
	return op.reseal(branches, rcp, at)
}

// An Opened is a sealed file decrypted and MAC-checked once, for the several
// uses a run has for it: its values (a key to sign with), and resealing its
// changed successor so that unchanged values keep their ciphertext.
type Opened struct {
	raw     []byte
	tree    *sops.Tree // decrypted
	dataKey []byte
	// cipher remembers the IV of every value it decrypted; encrypting the same
	// plaintext at the same path with the same data key then reproduces the
	// previous ciphertext exactly (what `sops edit` does with its IV stash).
	cipher sops.Cipher
}

// OpenSealed decrypts a sealed file with the given identities and verifies its MAC.
func OpenSealed(sealed []byte, ids Identities) (_ *Opened, err error) {
	defer recoverInto(&err)
	tree, err := loadSealed(sealed)
	if err != nil {
		return nil, err
	}
	return openTree(sealed, tree, ids)
}

func openTree(raw []byte, tree *sops.Tree, ids Identities) (*Opened, error) {
	cipher := aes.NewCipher()
	dataKey, err := decryptTree(tree, ids, cipher)
	if err != nil {
		return nil, err
	}
	return &Opened{raw: raw, tree: tree, dataKey: dataKey, cipher: cipher}, nil
}

// StringData is the decrypted manifest's stringData: its string values by key.
func (o *Opened) StringData() map[string]string {
	out := map[string]string{}
	if len(o.tree.Branches) == 0 {
		return out
	}
	for _, it := range o.tree.Branches[0] {
		data, ok := it.Value.(sops.TreeBranch)
		if it.Key != "stringData" || !ok {
			continue
		}
		for _, kv := range data {
			k, kok := kv.Key.(string)
			v, vok := kv.Value.(string)
			if kok && vok {
				out[k] = v
			}
		}
	}
	return out
}

// ResealDoc is the package's ResealDoc with o as the previous file, opened already.
func (o *Opened) ResealDoc(doc Doc, recipients []string, at time.Time) (_ []byte, err error) {
	defer recoverInto(&err)
	rcp, err := NormalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	branches, err := docBranches(doc)
	if err != nil {
		return nil, err
	}
	if !sameRecipients(o.tree, rcp) {
		return sealBranches(branches, rcp, at)
	}
	return o.reseal(branches, rcp, at)
}

// reseal seals branches with o's data key, to o's recipients (rcp, checked
// by the caller); unchanged plaintext returns o's bytes.
func (o *Opened) reseal(branches sops.TreeBranches, rcp []string, at time.Time) ([]byte, error) {
	if reflect.DeepEqual(o.tree.Branches, branches) && ourPolicy(o.tree.Metadata) {
		return bytes.Clone(o.raw), nil
	}
	md := o.tree.Metadata
	tree := sops.Tree{Branches: branches, Metadata: newMetadata(md.KeyGroups, md.ShamirThreshold)}
	return encryptAndEmit(&tree, o.dataKey, o.cipher, at)
}

// sameRecipients: a file sealed to exactly rcp, in one age key group. A
// changed recipient set gets a new data key, so that a removed recipient
// cannot read anything written from then on.
func sameRecipients(t *sops.Tree, rcp []string) bool {
	return slices.Equal(ageRecipients(t.Metadata.KeyGroups, true), rcp)
}

// Open decrypts a sealed manifest with the given identities and verifies the
// MAC. It also opens a file the sops CLI sealed in its binary format (a PEM
// key kept as `sops -e key.pem`), returning the original bytes.
func Open(sealed []byte, ids Identities) (_ []byte, err error) {
	defer recoverInto(&err)
	op, err := OpenSealed(sealed, ids)
	if err != nil {
		return nil, err
	}
	if isJSON(sealed) {
		if data, ok := binaryData(op.tree.Branches); ok {
			return []byte(data), nil
		}
		return jsonStore.EmitPlainFile(op.tree.Branches)
	}
	return emitYAML(op.tree.Branches)
}

// loadPlain parses a one-document YAML manifest into a sops tree.
func loadPlain(plain []byte) (sops.TreeBranches, error) {
	branches, err := parseYAML(plain)
	if err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if len(branches) != 1 {
		return nil, fmt.Errorf("parsing manifest: want exactly one YAML document, got %d", len(branches))
	}
	if stores.HasSopsTopLevelKey(branches[0]) {
		return nil, errors.New("parsing manifest: it is already sealed (has a top-level sops key)")
	}
	return branches, nil
}

// loadSealed parses a sealed file from a repository: bounded (size, YAML
// limits) because a pull request may have written it.
func loadSealed(sealed []byte) (*sops.Tree, error) {
	if len(sealed) > MaxFileSize {
		return nil, &LimitError{What: "bytes", Got: len(sealed), Limit: MaxFileSize}
	}
	if isJSON(sealed) {
		tree, err := jsonStore.LoadEncryptedFile(sealed)
		if errors.Is(err, sops.MetadataNotFound) {
			return nil, ErrNotSealed
		}
		if err != nil {
			return nil, fmt.Errorf("parsing sealed file: %w", err)
		}
		return &tree, nil
	}
	docs, err := ParseYAMLLimited(sealed, StateYAMLLimits)
	if err != nil {
		return nil, fmt.Errorf("parsing sealed file: %w", err)
	}
	branches, err := docBranchesOf(docs)
	if errors.Is(err, errSlowPath) {
		branches, err = yamlStore.LoadPlainFile(sealed)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing sealed file: %w", err)
	}
	branches, md, err := stores.ExtractMetadata(branches, stores.MetadataOpts{Flatten: stores.MetadataFlattenNone})
	if errors.Is(err, sops.MetadataNotFound) {
		return nil, ErrNotSealed
	}
	if err != nil {
		return nil, fmt.Errorf("parsing sealed file: %w", err)
	}
	return &sops.Tree{Branches: branches, Metadata: md}, nil
}

func isJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// binaryData recognises sops' binary format: a single "data" value.
func binaryData(b sops.TreeBranches) (string, bool) {
	if len(b) != 1 || len(b[0]) != 1 || b[0][0].Key != "data" {
		return "", false
	}
	s, ok := b[0][0].Value.(string)
	return s, ok
}

func newMetadata(groups []sops.KeyGroup, shamir int) sops.Metadata {
	return sops.Metadata{
		KeyGroups:       groups,
		ShamirThreshold: shamir,
		EncryptedRegex:  EncryptedRegex,
		Version:         version.Version,
	}
}

// ourPolicy reports whether a file was sealed with the rules Seal uses today;
// a file sealed under other rules is re-sealed even when its content is the same.
func ourPolicy(m sops.Metadata) bool {
	return m.EncryptedRegex == EncryptedRegex && !m.MACOnlyEncrypted &&
		m.UnencryptedSuffix == "" && m.EncryptedSuffix == "" && m.UnencryptedRegex == "" &&
		m.UnencryptedCommentRegex == "" && m.EncryptedCommentRegex == ""
}

// encryptAndEmit is common.EncryptTree followed by the YAML store's emitter,
// with lastmodified the run's clock (at) rather than time.Now: a render at
// --now stamps that time, and the same inputs give the same metadata.
func encryptAndEmit(tree *sops.Tree, dataKey []byte, cipher sops.Cipher, at time.Time) ([]byte, error) {
	mac, err := encryptTree(tree, dataKey, cipher)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	tree.Metadata.LastModified = at.UTC().Truncate(time.Second)
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("encrypting the MAC: %w", err)
	}
	branches, err := stores.SerializeMetadata(*tree, stores.MetadataOpts{Flatten: stores.MetadataFlattenNone})
	if err != nil {
		return nil, fmt.Errorf("writing sops metadata: %w", err)
	}
	out, err := emitYAML(branches)
	if err != nil {
		return nil, fmt.Errorf("writing sealed YAML: %w", err)
	}
	return out, nil
}

// decryptTree is common.DecryptTree with the data key unwrapped by the given
// identities rather than by whatever the process environment holds. It
// decrypts tree in place and returns the data key.
func decryptTree(tree *sops.Tree, ids Identities, cipher sops.Cipher) ([]byte, error) {
	if len(ids.ids) == 0 {
		return nil, fmt.Errorf("%w: no identity given", ErrNoMatchingIdentity)
	}
	svc := keyservice.NewCustomLocalClient(identityService(ids))
	dataKey, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{svc}, []string{sopsage.KeyTypeIdentifier})
	if err != nil {
		rcp := ageRecipients(tree.Metadata.KeyGroups, false)
		if len(rcp) == 0 {
			return nil, fmt.Errorf("%w: the file has no age recipients", ErrNoMatchingIdentity)
		}
		return nil, fmt.Errorf("%w (file recipients: %s)", ErrNoMatchingIdentity, strings.Join(rcp, ", "))
	}
	computed, err := decryptValues(tree, dataKey, cipher)
	if err != nil {
		// The data key is right (age authenticated it), so a value that does
		// not authenticate was altered or moved to another path.
		return nil, fmt.Errorf("%w: an encrypted value does not authenticate", ErrMACMismatch)
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || stored != computed {
		return nil, ErrMACMismatch
	}
	return dataKey, nil
}

// identityService is a sops key service that unwraps age data keys with
// explicit identities, so that opening a file never depends on the process
// environment.
type identityService struct {
	ids sopsage.ParsedIdentities
}

func (s identityService) Encrypt(_ context.Context, req *keyservice.EncryptRequest) (*keyservice.EncryptResponse, error) {
	k, ok := req.Key.KeyType.(*keyservice.Key_AgeKey)
	if !ok {
		return nil, errors.New("gitca seals with age recipients only")
	}
	mk, err := sopsage.MasterKeyFromRecipient(k.AgeKey.Recipient)
	if err != nil {
		return nil, err
	}
	if err := mk.Encrypt(req.Plaintext); err != nil {
		return nil, err
	}
	return &keyservice.EncryptResponse{Ciphertext: mk.EncryptedDataKey()}, nil
}

func (s identityService) Decrypt(_ context.Context, req *keyservice.DecryptRequest) (*keyservice.DecryptResponse, error) {
	k, ok := req.Key.KeyType.(*keyservice.Key_AgeKey)
	if !ok {
		return nil, errors.New("gitca opens age-wrapped data keys only")
	}
	mk := &sopsage.MasterKey{Recipient: k.AgeKey.Recipient}
	mk.SetEncryptedDataKey(req.Ciphertext)
	s.ids.ApplyToMasterKey(mk)
	pt, err := mk.Decrypt()
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: pt}, nil
}

// ageRecipients lists the age recipients of key groups, sorted and
// de-duplicated. With onlyAge, any non-age master key yields nil, which never
// equals a recipient list, so such a file is re-sealed from scratch.
func ageRecipients(groups []sops.KeyGroup, onlyAge bool) []string {
	set := map[string]bool{}
	for _, g := range groups {
		for _, k := range g {
			if a, ok := k.(*sopsage.MasterKey); ok {
				set[a.Recipient] = true
			} else if onlyAge {
				return nil
			}
		}
	}
	if onlyAge && len(groups) != 1 {
		return nil
	}
	return slices.Sorted(maps.Keys(set))
}

func NormalizeRecipients(in []string) ([]string, error) {
	set := map[string]bool{}
	for _, r := range in {
		if r = strings.TrimSpace(r); r != "" {
			set[r] = true
		}
	}
	if len(set) == 0 {
		return nil, errors.New("no age recipients to seal to")
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// Fast paths.
//
// The sops YAML store is correct but slow for many small files: it parses
// every input twice, renders each scalar by marshalling it to YAML text and
// parsing that back (yaml.Node.Encode), and sops.Tree.Encrypt recompiles
// encrypted_regex for every path element of every value. Together that is
// most of the ~4 ms a Secret took. The functions below build and emit the
// same sops.Tree with go.yaml.in/yaml/v3 directly and walk it with a
// precompiled regex. They cover the documents gitca writes (no comments,
// anchors or exotic scalar types); anything else goes to the sops code.
// Differential tests in seal_test.go hold them to byte-for-byte and
// MAC-for-MAC equality with sops.

// errSlowPath marks a document the fast path leaves to the sops store.
var errSlowPath = errors.New("document needs the sops store")

var encryptedKeyRe = regexp.MustCompile(EncryptedRegex)

// parseYAML is yamlStore.LoadPlainFile for comment-free documents.
func parseYAML(in []byte) (sops.TreeBranches, error) {
	branches, err := fastParseYAML(in)
	if err != nil {
		// Slow path for unusual documents, and sops' own wording for errors.
		return yamlStore.LoadPlainFile(in)
	}
	return branches, nil
}

func fastParseYAML(in []byte) (sops.TreeBranches, error) {
	dec := yaml.NewDecoder(bytes.NewReader(in))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			return docBranchesOf(docs)
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &doc)
	}
}

// docBranchesOf converts parsed documents as the sops YAML store would;
// errSlowPath when one holds what only the store handles (comments).
func docBranchesOf(docs []*yaml.Node) (sops.TreeBranches, error) {
	var branches sops.TreeBranches
	for _, doc := range docs {
		if hasComments(doc) || len(doc.Content) != 1 {
			return nil, errSlowPath
		}
		root := doc.Content[0]
		switch {
		case root.Kind == yaml.MappingNode:
			b, err := mappingToBranch(root)
			if err != nil {
				return nil, err
			}
			branches = append(branches, b)
		case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" && !hasComments(root):
			branches = append(branches, sops.TreeBranch{})
		default:
			return nil, errSlowPath
		}
	}
	return branches, nil
}

func hasComments(n *yaml.Node) bool {
	return n.HeadComment != "" || n.LineComment != "" || n.FootComment != ""
}

// mappingToBranch mirrors the sops YAML store: keys and scalars decoded by
// yaml.v3, mappings as TreeBranch, sequences as []interface{}.
func mappingToBranch(n *yaml.Node) (sops.TreeBranch, error) {
	if hasComments(n) || n.Anchor != "" {
		return nil, errSlowPath
	}
	branch := make(sops.TreeBranch, 0, len(n.Content)/2)
	seen := make(map[any]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode || hasComments(kn) || kn.Anchor != "" || kn.ShortTag() == "!!merge" {
			return nil, errSlowPath
		}
		k, err := scalarValue(kn)
		if err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, errSlowPath // sops reports duplicate keys
		}
		seen[k] = true
		v, err := nodeValue(vn)
		if err != nil {
			return nil, err
		}
		branch = append(branch, sops.TreeItem{Key: k, Value: v})
	}
	return branch, nil
}

func nodeValue(n *yaml.Node) (any, error) {
	if hasComments(n) || n.Anchor != "" {
		return nil, errSlowPath
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return scalarValue(n)
	case yaml.MappingNode:
		return mappingToBranch(n)
	case yaml.SequenceNode:
		var out []any // nil when empty, as in the sops store
		for _, c := range n.Content {
			v, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, errSlowPath
}

func scalarValue(n *yaml.Node) (any, error) {
	if n.ShortTag() == "!!str" {
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	switch v.(type) {
	case string, int, bool, float64, nil:
		return v, nil
	}
	// Timestamps, big integers, binary: leave them to the sops store.
	return nil, errSlowPath
}

// emitYAML is yamlStore.EmitPlainFile, building scalar nodes directly.
func emitYAML(branches sops.TreeBranches) ([]byte, error) {
	if len(branches) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(sopsyaml.IndentDefault)
	for _, br := range branches {
		m, err := branchToNode(br)
		if errors.Is(err, errSlowPath) {
			return yamlStore.EmitPlainFile(branches)
		}
		if err != nil {
			return nil, err
		}
		if err := e.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{m}}); err != nil {
			return nil, err
		}
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func branchToNode(br sops.TreeBranch) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Content: make([]*yaml.Node, 0, 2*len(br))}
	for _, it := range br {
		k, err := valueToNode(it.Key)
		if err != nil {
			return nil, err
		}
		v, err := valueToNode(it.Value)
		if err != nil {
			return nil, err
		}
		m.Content = append(m.Content, k, v)
	}
	return m, nil
}

func valueToNode(v any) (*yaml.Node, error) {
	switch v := v.(type) {
	case sops.TreeBranch:
		return branchToNode(v)
	case []any:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for _, it := range v {
			n, err := valueToNode(it)
			if err != nil {
				return nil, err
			}
			s.Content = append(s.Content, n)
		}
		return s, nil
	case sops.Comment:
		return nil, errSlowPath
	case string:
		// "<<" resolves to the merge tag, which yaml.v3 renders its own way.
		if utf8.ValidString(v) && v != "<<" {
			return stringNode(v), nil
		}
	}
	// Other scalars are rare in manifests: let yaml.v3 render them as sops does.
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return n, nil
}

// stringNode renders a string exactly as yaml.Node.Encode would: the emitter
// picks literal, quoted or plain style from a "!!str" tag by itself, except
// that yaml.v3's marshaller also double-quotes strings YAML 1.1 would read as
// booleans or sexagesimal numbers, for the sake of YAML 1.1 readers such as
// Kubernetes' — so must we.
func stringNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if yaml11Ambiguous(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

var base60Float = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)

func yaml11Ambiguous(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
		"n", "N", "no", "No", "NO", "off", "Off", "OFF":
		return true
	}
	if s == "" || !(s[0] == '+' || s[0] == '-' || s[0] >= '0' && s[0] <= '9') || !strings.Contains(s, ":") {
		return false
	}
	return base60Float.MatchString(s)
}

// fastTree reports whether every key is a string and every leaf a type the
// fast walkers handle exactly as sops' walker does.
func fastTree(branches sops.TreeBranches) bool {
	var ok func(v any) bool
	ok = func(v any) bool {
		switch v := v.(type) {
		case string, int, bool, float64, nil:
			return true
		case sops.TreeBranch:
			for _, it := range v {
				if _, isStr := it.Key.(string); !isStr || !ok(it.Value) {
					return false
				}
			}
			return true
		case []any:
			for _, it := range v {
				if !ok(it) {
					return false
				}
			}
			return true
		}
		return false
	}
	for _, b := range branches {
		if !ok(b) {
			return false
		}
	}
	return true
}

// walkLeaves visits the leaves in the order sops.Tree's walker does (nil
// values skipped, sequence items sharing their parent's path) and replaces
// each with f's result.
func walkLeaves(v any, path []string, f func(leaf any, path []string) (any, error)) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case sops.TreeBranch:
		for i := range v {
			// Clip so that siblings never share a backing array.
			nv, err := walkLeaves(v[i].Value, append(path[:len(path):len(path)], v[i].Key.(string)), f)
			if err != nil {
				return nil, err
			}
			v[i].Value = nv
		}
		return v, nil
	case []any:
		for i := range v {
			nv, err := walkLeaves(v[i], path, f)
			if err != nil {
				return nil, err
			}
			v[i] = nv
		}
		return v, nil
	}
	return f(v, path)
}

func encryptedPath(path []string) bool {
	for _, p := range path {
		if encryptedKeyRe.MatchString(p) {
			return true
		}
	}
	return false
}

// encryptTree is sops.Tree.Encrypt for gitca's own policy (encrypted_regex,
// MAC over every value).
func encryptTree(tree *sops.Tree, key []byte, cipher sops.Cipher) (string, error) {
	if !ourPolicy(tree.Metadata) || !fastTree(tree.Branches) {
		return tree.Encrypt(key, cipher)
	}
	h := sha512.New()
	for _, b := range tree.Branches {
		_, err := walkLeaves(b, nil, func(v any, path []string) (any, error) {
			raw, err := sops.ToBytes(v)
			if err != nil {
				return nil, err
			}
			h.Write(raw)
			if !encryptedPath(path) {
				return v, nil
			}
			return cipher.Encrypt(v, key, strings.Join(path, ":")+":")
		})
		if err != nil {
			return "", fmt.Errorf("encrypting value: %w", err)
		}
	}
	return fmt.Sprintf("%X", h.Sum(nil)), nil
}

// decryptValues is sops.Tree.Decrypt for files sealed under gitca's policy;
// files sealed under other rules go to sops.
func decryptValues(tree *sops.Tree, key []byte, cipher sops.Cipher) (string, error) {
	if !ourPolicy(tree.Metadata) || !fastTree(tree.Branches) {
		return tree.Decrypt(key, cipher)
	}
	h := sha512.New()
	for _, b := range tree.Branches {
		_, err := walkLeaves(b, nil, func(v any, path []string) (any, error) {
			if encryptedPath(path) {
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("expected an encrypted string at %s, got %T", strings.Join(path, "."), v)
				}
				var err error
				if v, err = cipher.Decrypt(s, key, strings.Join(path, ":")+":"); err != nil {
					return nil, err
				}
			}
			if _, isComment := v.(sops.Comment); !isComment {
				raw, err := sops.ToBytes(v)
				if err != nil {
					return nil, err
				}
				h.Write(raw)
			}
			return v, nil
		})
		if err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%X", h.Sum(nil)), nil
}

// IsEncryptedKey reports whether sealing encrypts the value stored under key
// (EncryptedRegex): planning reads every other value in plain text.
func IsEncryptedKey(key string) bool { return encryptedKeyRe.MatchString(key) }
