#!/usr/bin/env bash
# Builds the real kube-apiserver and kubectl (k8s.io/kubernetes ${KUBE_VERSION})
# for gitca's e2e tests, through the wrapper module in hack/kube-apiserver,
# into ${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/bin/{kube-apiserver,kubectl}-${KUBE_VERSION}.
#
# A binary already in the cache is reused; a cold build takes ~10-15 minutes
# on 2 cores (later builds with a warm Go build cache take well under one).
#
# Usage: hack/build-kube-apiserver.sh          build what is missing
#        hack/build-kube-apiserver.sh --force  rebuild both
#        hack/build-kube-apiserver.sh --regen  rewrite hack/kube-apiserver/go.mod
#                                              from k8s.io/kubernetes' go.mod
#                                              (after bumping KUBE_VERSION)
set -euo pipefail

KUBE_VERSION=v1.37.2
# Staging repos are published as v0.<minor>.<patch> alongside v1.<minor>.<patch>.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wrapper="$here/kube-apiserver"
cache_dir="${GITCA_CACHE_DIR:-$HOME/.cache/gitca}"
bin_dir="$cache_dir/bin"
GO=${GO:-go}

force=0
regen=0
for arg in "$@"; do
	case "$arg" in
	--force) force=1 ;;
	--regen) regen=1 ;;
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

log() { echo "build-kube-apiserver: $*" >&2; }

if [[ $regen == 1 ]]; then
	# Every module that k8s.io/kubernetes replaces with ./staging/... must be
	# replaced here with its published version, or nothing resolves.
	kmod=$(cd "$wrapper" && GOFLAGS=-mod=mod "$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[[ -f $kmod ]] || { log "cannot read k8s.io/kubernetes@$KUBE_VERSION go.mod"; exit 1; }
	gover=$(sed -n 's/^go \(.*\)$/\1/p' "$kmod")
	{
		echo "// Wrapper module: builds kube-apiserver and kubectl from k8s.io/kubernetes."
		echo "// k8s.io/kubernetes requires its staging repos at v0.0.0 with replace to"
		echo "// ./staging, which only works inside its own tree; here every staging module"
		echo "// is replaced with its published $STAGING_VERSION. Regenerate with"
		echo "// hack/build-kube-apiserver.sh --regen after bumping KUBE_VERSION."
		echo "module github.com/gitca-dev/gitca/hack/kube-apiserver"
		echo
		echo "go $gover"
		echo
		echo "godebug default=go1.26"
		echo
		echo "require k8s.io/kubernetes $KUBE_VERSION"
		echo
		echo "replace ("
		awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$kmod" | sort -u |
			while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
		echo ")"
	} >"$wrapper/go.mod"
	(cd "$wrapper" && "$GO" mod tidy)
	log "regenerated $wrapper/go.mod for $KUBE_VERSION"
fi

targets=()
for name in kube-apiserver kubectl; do
	out="$bin_dir/$name-$KUBE_VERSION"
	if [[ $force == 0 && -x $out ]]; then
		log "cached: $out"
	else
		targets+=("$name")
	fi
done
if [[ ${#targets[@]} == 0 ]]; then
	exit 0
fi

mkdir -p "$bin_dir"
tmp=$(mktemp -d "$bin_dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

pkgs=()
for name in "${targets[@]}"; do
	case "$name" in
	kube-apiserver) pkgs+=(.) ;;
	kubectl) pkgs+=(./kubectl) ;;
	esac
done

# Version stamping the way kubernetes' hack/lib/version.sh does, so that
# `kube-apiserver --version`, /version and kubectl report v1.37.2.
minor=${KUBE_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

log "building ${targets[*]} $KUBE_VERSION into $bin_dir (cold: ~10-15 min)"
start=$(date +%s)
(
	cd "$wrapper"
	# -mod=readonly: go.mod/go.sum are committed; a missing replace fails loudly.
	CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"
)
for name in "${targets[@]}"; do
	# The main package at the module root is named after the module's last
	# path element, which is kube-apiserver.
	mv -f "$tmp/$name" "$bin_dir/$name-$KUBE_VERSION"
	log "built $bin_dir/$name-$KUBE_VERSION ($(du -h "$bin_dir/$name-$KUBE_VERSION" | cut -f1))"
done
log "took $(($(date +%s) - start))s"
