#!/usr/bin/env bash
# Builds kcp and kcp-front-proxy ${KCP_VERSION} for gitca's kcp e2e test into
# ${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/bin/{kcp,kcp-front-proxy}-${KCP_VERSION}.
#
# kcp replaces k8s.io/* with its Kubernetes fork and github.com/kcp-dev/kcp/sdk
# with ./sdk, so `go install ...@version` cannot build it. Instead the module
# is fetched from the Go module proxy, copied to a build directory, its sdk
# nested module fetched next to it, and built there as the main module, where
# its replace lines apply. The kcp-dev pseudo-versions are not in the checksum
# database, hence GONOSUMDB=github.com/kcp-dev; go.sum still pins every hash.
# v0.28.0 is the newest release whose dependencies the proxy serves.
#
# A binary already in the cache is reused; a cold build takes ~15-25 minutes
# on 2 cores.
#
# Usage: hack/build-kcp.sh          build what is missing
#        hack/build-kcp.sh --force  rebuild both
set -euo pipefail

KCP_VERSION=v0.28.0
# The Kubernetes release kcp's fork is based on (k8s.io/kubernetes in its go.mod).
KUBE_VERSION=v1.32.3

cache_dir="${GITCA_CACHE_DIR:-$HOME/.cache/gitca}"
bin_dir="$cache_dir/bin"
GO=${GO:-go}
export GONOSUMDB=github.com/kcp-dev GOFLAGS=-mod=mod

force=0
for arg in "$@"; do
	case "$arg" in
	--force) force=1 ;;
	-h | --help)
		sed -n '2,17p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

log() { echo "build-kcp: $*" >&2; }

targets=()
for name in kcp kcp-front-proxy; do
	if [[ $force == 0 && -x $bin_dir/$name-$KCP_VERSION ]]; then
		log "cached: $bin_dir/$name-$KCP_VERSION"
	else
		targets+=("$name")
	fi
done
if [[ ${#targets[@]} == 0 ]]; then
	exit 0
fi

# moddir prints the module cache directory of module@version, downloading it.
moddir() {
	(cd "$tmp" && "$GO" mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}

mkdir -p "$bin_dir"
tmp=$(mktemp -d "$bin_dir/.build-kcp.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

kcp_dir=$(moddir "github.com/kcp-dev/kcp@$KCP_VERSION")
sdk_dir=$(moddir "github.com/kcp-dev/kcp/sdk@$KCP_VERSION")
[[ -f $kcp_dir/go.mod && -f $sdk_dir/go.mod ]] || {
	log "cannot fetch github.com/kcp-dev/kcp@$KCP_VERSION and its sdk from the module proxy"
	exit 1
}
src="$tmp/kcp"
cp -R "$kcp_dir" "$src"
chmod -R u+w "$src"
rm -rf "$src/sdk"
cp -R "$sdk_dir" "$src/sdk"
chmod -R u+w "$src/sdk"

# Version stamping as kcp's Makefile does, so /version reports the fork's Kubernetes.
major=${KUBE_VERSION#v}
major=${major%%.*}
minor=${KUBE_VERSION#v*.}
minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
	ldflags+=" -X $p.gitVersion=$KUBE_VERSION+kcp-$KCP_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

pkgs=()
for name in "${targets[@]}"; do
	pkgs+=("./cmd/$name")
done
log "building ${targets[*]} $KCP_VERSION into $bin_dir (cold: ~15-25 min)"
start=$(date +%s)
(cd "$src" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$tmp/out/" "${pkgs[@]}")
for name in "${targets[@]}"; do
	mv -f "$tmp/out/$name" "$bin_dir/$name-$KCP_VERSION"
	log "built $bin_dir/$name-$KCP_VERSION ($(du -h "$bin_dir/$name-$KCP_VERSION" | cut -f1))"
done
log "took $(($(date +%s) - start))s"
