#!/usr/bin/env bash
# Installs what gitca's tests need, only what is missing (idempotent):
#   apt:        etcd-server + etcd-client (etcd, etcdctl), openssl, curl
#   go install: sops (the version the root go.mod requires), kustomize,
#               staticcheck, govulncheck  -> $(go env GOPATH)/bin
#   kubectl:    if none is on PATH, the one hack/build-kube-apiserver.sh
#               caches in ${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/bin is linked
#               into $(go env GOPATH)/bin (the e2e tests use the cached one
#               directly). Pass --with-kube to run that build here (~15 min cold).
#   mermaid:    with --with-mermaid, hack/install-mermaid.sh (mermaid-cli,
#               Debian's chromium and graphviz, for the graph render tests; 2-5 min cold).
# Prints what it installed. Needs root (or sudo) only when an apt package is missing.
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.2
STATICCHECK_VERSION=v0.8.2
GOVULNCHECK_VERSION=v1.9.0
KUBE_VERSION=v1.37.2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
GO=${GO:-go}
gobin=$("$GO" env GOBIN)
[[ -n $gobin ]] || gobin="$("$GO" env GOPATH)/bin"
cache_bin="${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/bin"
export PATH="$gobin:$PATH"
# sops phones home for a version check unless told not to; there is no network.
export SOPS_DISABLE_VERSION_CHECK=1

with_kube=0
with_mermaid=0
for arg in "$@"; do
	case "$arg" in
	--with-kube) with_kube=1 ;;
	--with-mermaid) with_mermaid=1 ;;
	-h | --help)
		sed -n '2,13p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

installed=()
log() { echo "install-tools: $*" >&2; }

# --- apt ---------------------------------------------------------------------
apt_pkgs=()
need_cmd_pkg() { command -v "$1" >/dev/null 2>&1 || apt_pkgs+=("$2"); }
need_cmd_pkg etcd etcd-server
need_cmd_pkg etcdctl etcd-client
need_cmd_pkg openssl openssl
need_cmd_pkg curl curl
if [[ ${#apt_pkgs[@]} -gt 0 ]]; then
	if ! command -v apt-get >/dev/null 2>&1; then
		log "missing ${apt_pkgs[*]} and no apt-get: install them by hand"
		exit 1
	fi
	sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || { log "need root or sudo to apt-get install ${apt_pkgs[*]}"; exit 1; }
		sudo=(sudo)
	fi
	log "apt-get install ${apt_pkgs[*]}"
	"${sudo[@]}" apt-get update -qq
	# etcd-server's postinst may try to start a system etcd; there is no init
	# here, and the tests run their own on free loopback ports anyway.
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
	installed+=("${apt_pkgs[@]}")
fi

# --- go install --------------------------------------------------------------
# go_tool NAME PACKAGE MODULE VERSION: installs PACKAGE@VERSION unless the
# binary in $gobin already was built from MODULE at VERSION.
go_tool() {
	local name=$1 pkg=$2 mod=$3 ver=$4 have
	have=$("$GO" version -m "$gobin/$name" 2>/dev/null | awk -v m="$mod" '$1 == "mod" && $2 == m { print $3 }' || true)
	if [[ $have == "$ver" ]]; then
		return 0
	fi
	log "go install $pkg@$ver${have:+ (had $have)}"
	GOBIN="$gobin" "$GO" install "$pkg@$ver"
	installed+=("$name@$ver")
}

sops_version=$(cd "$root" && "$GO" list -m -f '{{.Version}}' github.com/getsops/sops/v3 2>/dev/null || true)
if [[ -z $sops_version ]]; then
	log "cannot read the sops version from $root/go.mod (go list -m github.com/getsops/sops/v3)"
	exit 1
fi
go_tool sops github.com/getsops/sops/v3/cmd/sops github.com/getsops/sops/v3 "$sops_version"
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
go_tool staticcheck honnef.co/go/tools/cmd/staticcheck honnef.co/go/tools "$STATICCHECK_VERSION"
go_tool govulncheck golang.org/x/vuln/cmd/govulncheck golang.org/x/vuln "$GOVULNCHECK_VERSION"

# --- kube-apiserver / kubectl ------------------------------------------------
if [[ $with_kube == 1 ]]; then
	"$here/build-kube-apiserver.sh"
fi
if ! command -v kubectl >/dev/null 2>&1; then
	if [[ -x $cache_bin/kubectl-$KUBE_VERSION ]]; then
		ln -sf "$cache_bin/kubectl-$KUBE_VERSION" "$gobin/kubectl"
		installed+=("kubectl@$KUBE_VERSION (link)")
	else
		log "no kubectl on PATH; hack/build-kube-apiserver.sh builds kubectl $KUBE_VERSION (the e2e tests use that one)"
	fi
fi

# --- mermaid-cli ---------------------------------------------------------------
if [[ $with_mermaid == 1 ]]; then
	"$here/install-mermaid.sh" >/dev/null
fi

if [[ ${#installed[@]} -gt 0 ]]; then
	log "installed: ${installed[*]}"
else
	log "everything already installed"
fi
