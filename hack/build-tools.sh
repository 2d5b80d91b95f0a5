#!/usr/bin/env bash
# Builds the Go test tooling (control plane, etcd, helm, stripe-mock, hydra) from the pinned modules in
# hack/tools/* and caches the binaries outside the repo, keyed by module version and go.sum hash,
# so a second run is a no-op. Prints the cache's bin directory on stdout (last line).
#
#   hack/build-tools.sh [component ...]     components: kubernetes etcd helm stripe-mock hydra (default all)
#   ATLANTIPLEX_TOOLS_CACHE=/path           cache root (default ~/.cache/atlantiplex-tools)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${ATLANTIPLEX_TOOLS_CACHE:-$HOME/.cache/atlantiplex-tools}
bin="$cache/bin"
mkdir -p "$bin"

export CGO_ENABLED=0 GOFLAGS=-mod=mod
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kubernetes etcd helm stripe-mock hydra)

log() { printf '[build-tools] %s\n' "$*" >&2; }
started=$SECONDS

# version of a required module as go.mod pins it
mod_version() { awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$1/go.mod"; }

# Build one component into $cache/<component>-<version>-<hash>/ and link its binaries into $bin.
# $1 component dir, $2 module whose version keys the cache, $3 ldflags, $4... "name=package" pairs.
# $BUILD_TAGS and $CGO (default 0) apply to this one call.
build() {
  local component=$1 dir="$here/tools/$1" key_mod=$2 ldflags=$3; shift 3
  local version hash out
  version=$(mod_version "$dir" "$key_mod")
  hash=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-12)
  out="$cache/$component-$version-$hash"
  if [ -f "$out/.complete" ]; then
    log "$component $version: cached in $out"
  else
    log "$component $version: building into $out (first time only; all tools take about 8-10 min on 2 cores)"
    rm -rf "$out"; mkdir -p "$out"
    local pair n=0 t
    for pair in "$@"; do
      n=$((n + 1)); t=$SECONDS
      log "$component: building ${pair%%=*} ($n of $#)..."
      (cd "$dir" && CGO_ENABLED=${CGO:-0} go build -trimpath -tags "${BUILD_TAGS:-}" -ldflags "$ldflags" -o "$out/${pair%%=*}" "${pair#*=}")
      log "$component: ${pair%%=*} built in $((SECONDS - t))s"
    done
    touch "$out/.complete"
  fi
  for pair in "$@"; do ln -sfn "$out/${pair%%=*}" "$bin/${pair%%=*}"; done
}

for c in "${components[@]}"; do
  case "$c" in
    kubernetes)
      v=$(mod_version "$here/tools/kubernetes" k8s.io/kubernetes)
      major=${v#v}; major=${major%%.*}; minor=${v#v*.}; minor=${minor%%.*}
      flags=""
      # Without these, /version says v0.0.0 and Helm's kubeVersion checks fail.
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        flags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z -X $p.gitCommit=0000000000000000000000000000000000000000"
      done
      build kubernetes k8s.io/kubernetes "-s -w$flags" \
        kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
        kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
        kubectl=k8s.io/kubernetes/cmd/kubectl
      ;;
    etcd)
      build etcd go.etcd.io/etcd/server/v3 "-s -w" etcd=go.etcd.io/etcd/server/v3
      ;;
    helm)
      v=$(mod_version "$here/tools/helm" helm.sh/helm/v3)
      build helm helm.sh/helm/v3 "-s -w -X helm.sh/helm/v3/internal/version.version=$v" helm=helm.sh/helm/v3/cmd/helm
      ;;
    stripe-mock)
      build stripe-mock github.com/stripe/stripe-mock "-s -w" stripe-mock=github.com/stripe/stripe-mock
      ;;
    hydra)
      # The OIDC provider for SSO tests and `make run`. Its in-memory store (dsn: memory) is SQLite,
      # which needs cgo and these tags ("SQLite support was not built into the binary" otherwise).
      CGO=1 BUILD_TAGS=sqlite,sqlite_omit_load_extension \
        build hydra github.com/ory/hydra/v2 "-s -w" hydra=github.com/ory/hydra/v2
      ;;
    *) log "unknown component $c"; exit 2 ;;
  esac
done
log "tools ready in $bin ($((SECONDS - started))s)"
echo "$bin"
