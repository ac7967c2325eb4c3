#!/usr/bin/env bash
# Installs @mermaid-js/mermaid-cli (mmdc) at the versions pinned by
# hack/mermaid/package-lock.json into ${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/mermaid,
# for the test that renders `gitca graph` output to SVG (graph/render_test.go,
# which also redraws docs/pki-kcp.svg under -update). Idempotent: a cache
# installed from the same lock file is kept (npm ci: 1-4 min cold, by how fast
# the registry answers; instant warm).
#
# puppeteer downloads no browser (none can be downloaded in CI): it drives
# Debian's chromium, apt-get installed when missing, as are node, npm and
# graphviz (dot, for the DOT output's render test).
#
# Prints the path of mmdc on stdout; everything else goes to stderr.
set -euo pipefail

pins=$(cd "$(dirname "${BASH_SOURCE[0]}")/mermaid" && pwd)
dst="${GITCA_CACHE_DIR:-$HOME/.cache/gitca}/mermaid"
log() { echo "install-mermaid: $*" >&2; }

apt_pkgs=()
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_pkgs+=(npm)
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
# Graphviz too, for the render test of the DOT output; small, and one apt run.
command -v dot >/dev/null 2>&1 || apt_pkgs+=(graphviz)
if [[ ${#apt_pkgs[@]} -gt 0 ]]; then
	sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || { log "need root or sudo to apt-get install ${apt_pkgs[*]}"; exit 1; }
		sudo=(sudo)
	fi
	log "apt-get install ${apt_pkgs[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

# The lock file is the cache key: a changed pin reinstalls, nothing else does.
# The install happens beside the cache and is renamed into place only when
# complete, so an interrupted one never looks like a cache.
if ! cmp -s "$pins/package-lock.json" "$dst/package-lock.json" || [[ ! -x $dst/node_modules/.bin/mmdc ]]; then
	log "npm ci into $dst"
	tmp="$dst.tmp.$$"
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp"
	cp "$pins/package.json" "$pins/package-lock.json" "$tmp/"
	(cd "$tmp" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
	rm -rf "$dst"
	mv "$tmp" "$dst"
	trap - EXIT
fi
echo "$dst/node_modules/.bin/mmdc"
