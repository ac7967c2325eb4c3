package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

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

// Metadata is the public part of a file's sops block.
type Metadata struct {
	Recipients       []string // age recipients, sorted, de-duplicated
	LastModified     time.Time
	HasMAC           bool
	EncryptedRegex   string
	MACOnlyEncrypted bool
	Version          string
}

// now is the clock that stamps sops' lastmodified; a variable so tests can pin it.
var now = time.Now

// Indent 0 selects sops' default (4), so that a later `sops edit` by a person
// does not reformat the whole file.
var (
	yamlStore = sopsyaml.NewStore(&config.YAMLStoreConfig{})
	jsonStore = sopsjson.NewStore(&config.JSONStoreConfig{})
)

// Seal encrypts the private values of a one-document YAML manifest to the age
// recipients, in process, with a fresh data key.
func Seal(plain []byte, recipients []string) ([]byte, error) {
	branches, err := loadPlain(plain)
	if err != nil {
		return nil, err
	}
	return sealBranches(branches, recipients)
}

func sealBranches(branches sops.TreeBranches, recipients []string) ([]byte, error) {
	rcp, err := normalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	group := make(sops.KeyGroup, 0, len(rcp))
	for _, r := range rcp {
		mk, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("age recipient %q: %w", r, err)
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
	return encryptAndEmit(&tree, dataKey, aes.NewCipher())
}

// Reseal is Seal for a changed file that was sealed before: it reuses prev's
// data key and leaves every value whose plaintext did not change with its exact
// previous ciphertext (what `sops edit` does with its IV stash), so a git diff
// shows only the values that changed. ids must open prev. An unchanged
// plaintext returns prev itself. If the recipient set changed, a new data key
// is made, so a removed recipient cannot read anything written from now on.
func Reseal(plain, prev []byte, recipients []string, ids Identities) ([]byte, error) {
	rcp, err := normalizeRecipients(recipients)
	if err != nil {
		return nil, err
	}
	branches, err := loadPlain(plain)
	if err != nil {
		return nil, err
	}
	old, err := loadSealed(prev)
	if err != nil {
		return nil, fmt.Errorf("previous file: %w", err)
	}
	if !slices.Equal(ageRecipients(old.Metadata.KeyGroups, true), rcp) {
		return sealBranches(branches, rcp)
	}
	// The cipher remembers the IV of every value it decrypts; encrypting the
	// same plaintext at the same path with the same data key then reproduces
	// the previous ciphertext exactly.
	cipher := aes.NewCipher()
	dataKey, err := decryptTree(old, ids, cipher)
	if err != nil {
		return nil, fmt.Errorf("previous file: %w", err)
	}
	if reflect.DeepEqual(old.Branches, branches) && ourPolicy(old.Metadata) {
		return bytes.Clone(prev), nil
	}
	tree := sops.Tree{Branches: branches, Metadata: newMetadata(old.Metadata.KeyGroups, old.Metadata.ShamirThreshold)}
	return encryptAndEmit(&tree, dataKey, cipher)
}

// Open decrypts a sealed manifest with the given identities and verifies the
// MAC. It also opens a file the sops CLI sealed in its binary format (a PEM
// key kept as `sops -e key.pem`), returning the original bytes.
func Open(sealed []byte, ids Identities) ([]byte, error) {
	tree, err := loadSealed(sealed)
	if err != nil {
		return nil, err
	}
	if _, err := decryptTree(tree, ids, aes.NewCipher()); err != nil {
		return nil, err
	}
	if isJSON(sealed) {
		if data, ok := binaryData(tree.Branches); ok {
			return []byte(data), nil
		}
		return jsonStore.EmitPlainFile(tree.Branches)
	}
	return yamlStore.EmitPlainFile(tree.Branches)
}

// ReadMetadata reads, without decrypting, the sops block of a sealed file.
func ReadMetadata(sealed []byte) (Metadata, error) {
	var doc struct {
		Sops *struct {
			Age          []struct{ Recipient string }                 `yaml:"age"`
			KeyGroups    []struct{ Age []struct{ Recipient string } } `yaml:"key_groups"`
			LastModified string                                       `yaml:"lastmodified"`
			MAC          string                                       `yaml:"mac"`
			Regex        string                                       `yaml:"encrypted_regex"`
			MACOnly      bool                                         `yaml:"mac_only_encrypted"`
			Version      string                                       `yaml:"version"`
		} `yaml:"sops"`
	}
	if err := yaml.Unmarshal(sealed, &doc); err != nil {
		return Metadata{}, fmt.Errorf("parsing sealed file: %w", err)
	}
	s := doc.Sops
	if s == nil {
		return Metadata{}, ErrNotSealed
	}
	md := Metadata{HasMAC: s.MAC != "", EncryptedRegex: s.Regex, MACOnlyEncrypted: s.MACOnly, Version: s.Version}
	set := map[string]bool{}
	for _, a := range s.Age {
		set[a.Recipient] = true
	}
	for _, g := range s.KeyGroups {
		for _, a := range g.Age {
			set[a.Recipient] = true
		}
	}
	md.Recipients = sortedRecipients(set)
	if s.LastModified != "" {
		t, err := time.Parse(time.RFC3339, s.LastModified)
		if err != nil {
			return Metadata{}, fmt.Errorf("sops.lastmodified: %w", err)
		}
		md.LastModified = t
	}
	return md, nil
}

// loadPlain parses a one-document YAML manifest into a sops tree.
func loadPlain(plain []byte) (sops.TreeBranches, error) {
	branches, err := yamlStore.LoadPlainFile(plain)
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

func loadSealed(sealed []byte) (*sops.Tree, error) {
	store := sops.Store(yamlStore)
	if isJSON(sealed) {
		store = jsonStore
	}
	tree, err := store.LoadEncryptedFile(sealed)
	if errors.Is(err, sops.MetadataNotFound) {
		return nil, ErrNotSealed
	}
	if err != nil {
		return nil, fmt.Errorf("parsing sealed file: %w", err)
	}
	return &tree, nil
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
// with lastmodified taken from the package clock instead of time.Now so that
// tests can pin it.
func encryptAndEmit(tree *sops.Tree, dataKey []byte, cipher sops.Cipher) ([]byte, error) {
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	tree.Metadata.LastModified = now().UTC().Truncate(time.Second)
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("encrypting the MAC: %w", err)
	}
	out, err := yamlStore.EmitEncryptedFile(*tree)
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
		return nil, fmt.Errorf("%w (file recipients: %s)", ErrNoMatchingIdentity, strings.Join(ageRecipients(tree.Metadata.KeyGroups, false), ", "))
	}
	computed, err := tree.Decrypt(dataKey, cipher)
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
	return sortedRecipients(set)
}

func normalizeRecipients(in []string) ([]string, error) {
	set := map[string]bool{}
	for _, r := range in {
		if r = strings.TrimSpace(r); r != "" {
			set[r] = true
		}
	}
	if len(set) == 0 {
		return nil, errors.New("no age recipients to seal to")
	}
	return sortedRecipients(set), nil
}

func sortedRecipients(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
