// Package gitsync moves the topology and state repositories between a remote
// and a local cache clone: it pulls, lands at most one commit per run and
// pushes it with optimistic concurrency. It speaks git through go-git only;
// go-git's file:// transport itself runs the system's git-upload-pack and
// git-receive-pack, so local remotes need git installed (ssh and https do not).
//
// A run is atomic from the remote's point of view: nothing leaves the cache
// clone until Push, and Open, Reset and Refresh always bring the clone back to
// the remote tip, so a crashed or failed run is repaired by the next one.
package gitsync

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// DefaultBranch is used when a source names no "#branch".
const DefaultBranch = "main"

// Source is a Flux GitRepository-style address: a repository, a branch and a
// directory inside it.
type Source struct {
	URL    string // normalised clone URL: file:///abs/path, ssh://user@host:port/path, https://host/path
	Branch string // from "#branch"; default "main"
	Dir    string // from "//subdir" after the repository part, cleaned, "" for the root
}

// String renders the source back in the form ParseSource accepts, so a
// parsed source round-trips and error messages show what the user wrote.
func (s Source) String() string {
	out := s.URL
	if s.Dir != "" {
		out += "//" + s.Dir
	}
	return out + "#" + s.Branch
}

// acceptedForms is quoted by every parse error so the user sees the fix, not
// only the fault.
const acceptedForms = "accepted forms: /local/path or ./relative/path, file:///abs/path, " +
	"ssh://[user@]host[:port]/path, [user@]host:path (scp-style), https://host/path; " +
	"each optionally followed by //subdir and #branch"

// ParseSource parses a repository address such as
// "git@github.com:org/pki.git//clusters/prod#main" or
// "file:///srv/topo.git//clusters/prod". Plain http is refused because the
// state repository carries encrypted keys and its integrity matters as much
// as its confidentiality.
func ParseSource(s string) (Source, error) {
	raw := s
	if strings.TrimSpace(s) == "" {
		return Source{}, fmt.Errorf("gitsync: empty repository address (%s)", acceptedForms)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return Source{}, fmt.Errorf("gitsync: repository address %q contains whitespace (%s)", raw, acceptedForms)
	}

	// A password in the address would be stored in the clone's .git/config
	// and quoted by every error naming the remote, so refuse it first,
	// before any message can echo it.
	if u, err := url.Parse(s); err == nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			return Source{}, fmt.Errorf("gitsync: %q: credentials in the URL are refused; use a token file or environment variable", u.Redacted())
		}
	}

	src := Source{Branch: DefaultBranch}
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		src.Branch = s[i+1:]
		s = s[:i]
		if src.Branch == "" {
			return Source{}, fmt.Errorf("gitsync: %q: empty branch after '#'", raw)
		}
		if err := plumbing.NewBranchReferenceName(src.Branch).Validate(); err != nil {
			return Source{}, fmt.Errorf("gitsync: %q: invalid branch name %q", raw, src.Branch)
		}
	}

	var (
		repoURL, dir string
		err          error
	)
	switch scheme, _, hasScheme := strings.Cut(s, "://"); {
	case hasScheme:
		repoURL, dir, err = parseURLForm(raw, s, strings.ToLower(scheme))
	case isSCPLike(s):
		repoURL, dir, err = parseSCPForm(raw, s)
	default:
		repoURL, dir, err = parseLocalForm(raw, s)
	}
	if err != nil {
		return Source{}, err
	}
	src.URL = repoURL

	if src.Dir, err = cleanDir(raw, dir); err != nil {
		return Source{}, err
	}
	return src, nil
}

// parseURLForm handles scheme://authority/path addresses.
func parseURLForm(raw, s, scheme string) (string, string, error) {
	switch scheme {
	case "file", "ssh", "https":
	case "http":
		return "", "", fmt.Errorf("gitsync: %q: plain http is refused (no TLS); use https:// or ssh:// (%s)", raw, acceptedForms)
	default:
		return "", "", fmt.Errorf("gitsync: %q: unsupported scheme %q (%s)", raw, scheme, acceptedForms)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("gitsync: %q: %v (%s)", raw, err, acceptedForms)
	}
	if u.RawQuery != "" || u.Opaque != "" {
		return "", "", fmt.Errorf("gitsync: %q: unexpected query or opaque part (%s)", raw, acceptedForms)
	}
	repoPath, dir := splitDir(u.Path)

	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return "", "", fmt.Errorf("gitsync: %q: file:// URLs must not name a host; use file:///abs/path", raw)
		}
		if u.User != nil {
			return "", "", fmt.Errorf("gitsync: %q: file:// URLs take no user", raw)
		}
		if !path.IsAbs(repoPath) || path.Clean(repoPath) == "/" {
			return "", "", fmt.Errorf("gitsync: %q: file:// needs an absolute repository path", raw)
		}
		return fileURL(path.Clean(repoPath)), dir, nil
	}
	if u.Hostname() == "" {
		return "", "", fmt.Errorf("gitsync: %q: missing host (%s)", raw, acceptedForms)
	}
	repoPath = strings.TrimSuffix(repoPath, "/")
	if repoPath == "" {
		return "", "", fmt.Errorf("gitsync: %q: missing repository path (%s)", raw, acceptedForms)
	}
	out := url.URL{Scheme: scheme, User: u.User, Host: strings.ToLower(u.Host), Path: repoPath}
	return out.String(), dir, nil
}

// isSCPLike follows git's own rule (connect.c, url_is_local_not_ssh): a colon
// before the first slash makes "host:path" an ssh address.
func isSCPLike(s string) bool {
	colon := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	return colon > 0 && (slash < 0 || colon < slash)
}

func parseSCPForm(raw, s string) (string, string, error) {
	authority, p, _ := strings.Cut(s, ":")
	user, host, hasUser := strings.Cut(authority, "@")
	if !hasUser {
		host, user = authority, ""
	}
	if host == "" || (hasUser && user == "") {
		return "", "", fmt.Errorf("gitsync: %q: scp-style address needs [user@]host:path (%s)", raw, acceptedForms)
	}
	repoPath, dir := splitDir(p)
	repoPath = strings.TrimSuffix(strings.TrimPrefix(repoPath, "/"), "/")
	if repoPath == "" {
		return "", "", fmt.Errorf("gitsync: %q: missing repository path (%s)", raw, acceptedForms)
	}
	out := url.URL{Scheme: "ssh", Host: strings.ToLower(host), Path: "/" + repoPath}
	if user != "" {
		out.User = url.User(user)
	}
	return out.String(), dir, nil
}

func parseLocalForm(raw, s string) (string, string, error) {
	repoPath, dir := splitDir(s)
	if repoPath == "" {
		return "", "", fmt.Errorf("gitsync: %q: missing repository path (%s)", raw, acceptedForms)
	}
	abs, err := filepath.Abs(repoPath)
	if err != nil {
		return "", "", fmt.Errorf("gitsync: %q: %w", raw, err)
	}
	if abs == "/" {
		return "", "", fmt.Errorf("gitsync: %q: the filesystem root is not a repository", raw)
	}
	return fileURL(filepath.ToSlash(abs)), dir, nil
}

// fileURL escapes what a path may hold and a URL may not (spaces, '%'), so
// the result parses back to the same path.
func fileURL(p string) string {
	return (&url.URL{Scheme: "file", Path: p}).String()
}

// splitDir separates "repo//subdir" at the first double slash. A leading
// double slash belongs to the path (it cannot introduce a subdir of nothing).
func splitDir(p string) (string, string) {
	i := strings.Index(p[min(1, len(p)):], "//")
	if i < 0 {
		return p, ""
	}
	i += min(1, len(p))
	return p[:i], p[i+2:]
}

func cleanDir(raw, dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	c := path.Clean(dir)
	if c == ".." || strings.HasPrefix(c, "../") || path.IsAbs(c) {
		return "", fmt.Errorf("gitsync: %q: directory %q escapes the repository", raw, dir)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// IsRemote tells a repository address from a directory to read as it is: a
// URL, an scp-style address ([user@]host:path), a #branch or //subdir
// selector, or a bare repository on disk. A checked-out worktree is a
// directory.
func IsRemote(s string) bool {
	if strings.Contains(s, "://") || strings.Contains(s, "#") || strings.Contains(s, "//") {
		return true
	}
	if isSCPLike(s) && !strings.Contains(s[:strings.IndexByte(s, ':')], `\`) {
		return true
	}
	fi, err := os.Stat(filepath.Join(s, "HEAD"))
	if err != nil || fi.IsDir() {
		return false
	}
	fi, err = os.Stat(filepath.Join(s, "objects"))
	return err == nil && fi.IsDir()
}

// CacheDir is where clones are kept: dir when set, else gitca's directory
// in the user's cache directory.
func CacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no --cache-dir and no user cache directory: %w", err)
	}
	return filepath.Join(base, "gitca"), nil
}
