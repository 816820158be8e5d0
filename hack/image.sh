#!/usr/bin/env bash
# hack/image.sh -- build the images the chart and the e2e tests run:
#   jobqueue:dev           the project's image (Dockerfile): every component
#   jobqueue-postgres:dev  Debian's PostgreSQL for the chart's postgresql.enabled
#   jobqueue-e2e:dev       jobqueue:dev plus the e2e tests' handler module
#
# Usage:
#   hack/image.sh [build] [--load] [IMAGE...]   build (default: all three)
#   hack/image.sh load [IMAGE...]               load built images into the cluster
#   hack/image.sh archive IMAGE                 print the docker-archive path of IMAGE
# IMAGE is one of: jobqueue postgres e2e.
#
# With a working Docker or Podman engine (`docker info` / `podman info`) it
# runs `docker build` on the Dockerfiles. Without one (this is the usual case
# on CI machines here) it produces the same image from a Debian bookworm root
# file system bootstrapped with mmdebstrap, Python 3.11 from Debian, the
# wheels built on the host (Debian 12, Python 3.11, so they match) installed
# into the venv /opt/jobqueue, turned into an OCI image with umoci and into a
# docker-archive with skopeo. Layers, as in the Dockerfile:
#   base (Debian + user 10001)  -> deps (the venv with every dependency) -> app (jobqueue)
# each cached by a hash of its inputs, so a source change rebuilds only the
# app layer (seconds). Everything lives outside the repository, under
#   ${JOBQUEUE_IMAGES:-~/.cache/jobqueue/images}
#
# --load / load: imports the archives into the local cluster's containerd
# (hack/cluster.sh) with `ctr -n k8s.io images import`, into kind with
# `kind load`, or leaves them in the engine that built them.
#
# Knobs: JOBQUEUE_IMAGE_ENGINE=docker|podman|local (default: detect),
# JOBQUEUE_IMAGE_FORCE=1 (rebuild every layer), JOBQUEUE_CONTAINERD_ADDRESS
# (containerd socket; default: from hack/cluster.sh), KIND_CLUSTER (kind
# cluster name), PYTHON (host interpreter with pip).
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${JOBQUEUE_IMAGES:-$HOME/.cache/jobqueue/images}"
LAYOUT="$CACHE/oci"
PYTHON="${PYTHON:-python3}"
FORCE="${JOBQUEUE_IMAGE_FORCE:-0}"
SUITE=bookworm
MIRROR="${JOBQUEUE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
VENV=/opt/jobqueue
# Debian bookworm's python3 is 3.11: the venv's site-packages.
SITE="$VENV/lib/python3.11/site-packages"
PATH_ENV="PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ALL_IMAGES=(jobqueue postgres e2e)

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

tag_of() {
    case "$1" in
        jobqueue) echo "jobqueue:dev" ;;
        postgres) echo "jobqueue-postgres:dev" ;;
        e2e) echo "jobqueue-e2e:dev" ;;
        *) die "unknown image '$1' (one of: ${ALL_IMAGES[*]})" ;;
    esac
}
archive_of() { echo "$CACHE/$1.tar"; }

# ---- engine -----------------------------------------------------------------

engine() {
    if [[ -n "${JOBQUEUE_IMAGE_ENGINE:-}" ]]; then echo "$JOBQUEUE_IMAGE_ENGINE"; return; fi
    local e
    for e in docker podman; do
        if command -v "$e" >/dev/null 2>&1 && timeout 20 "$e" info >/dev/null 2>&1; then
            echo "$e"; return
        fi
    done
    echo local
}

# ---- hashing ----------------------------------------------------------------

sha() { sha256sum | cut -c1-16; }
# Content of files (paths relative to the repository), excluding caches.
tree_hash() {
    (cd "$ROOT" && find "$@" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' \
        -not -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum) | sha
}

# ---- engine path: the Dockerfiles ---------------------------------------------

engine_build() {
    local e="$1" name="$2"
    case "$name" in
        jobqueue) "$e" build -t "$(tag_of jobqueue)" -f "$ROOT/Dockerfile" "$ROOT" ;;
        postgres) "$e" build -t "$(tag_of postgres)" -f "$ROOT/hack/image/postgres.Dockerfile" "$ROOT/hack/image" ;;
        e2e) "$e" build -t "$(tag_of e2e)" -f "$ROOT/tests/e2e/Dockerfile" "$ROOT/tests/e2e" ;;
    esac >&2
    "$e" save -o "$(archive_of "$name")" "$(tag_of "$name")"
}

# ---- local path: mmdebstrap + umoci + skopeo ----------------------------------

need_tools() {
    local missing=()
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v umoci >/dev/null || missing+=(umoci)
    command -v skopeo >/dev/null || missing+=(skopeo)
    if ((${#missing[@]})); then
        log "installing ${missing[*]} with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; } \
            || die "could not install ${missing[*]}"
    fi
    [[ -d "$LAYOUT" ]] || umoci init --layout "$LAYOUT"
}

has_tag() { umoci ls --layout "$LAYOUT" 2>/dev/null | grep -x -- "$1" >/dev/null; }

# rootfs_tarball NAME PACKAGES [HOOK_FILE...]: a cached mmdebstrap tarball.
# Every image gets the user 10001 the Dockerfile creates.
rootfs_tarball() {
    local name="$1" packages="$2"
    shift 2
    local user_hook='chroot "$1" useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin jobqueue'
    local clean_hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
    local hooks=("--customize-hook=$user_hook")
    local extra
    for extra in "$@"; do hooks+=("--customize-hook=$(cat "$extra")"); done
    hooks+=("--customize-hook=$clean_hook")
    local key
    key=$(printf '%s\n' "$SUITE" "$MIRROR" "$packages" "${hooks[@]}" | sha)
    local out="$CACHE/rootfs-$name-$key.tar"
    if [[ "$FORCE" == 1 || ! -s "$out" ]]; then
        log "bootstrapping Debian $SUITE with $packages (about a minute)"
        local started=$SECONDS
        mmdebstrap --quiet --variant=apt --include="$packages" --aptopt='Acquire::Retries "3"' \
            "${hooks[@]}" "$SUITE" "$out.part.tar" "$MIRROR" >&2
        mv "$out.part.tar" "$out"
        log "rootfs $name: $(du -m "$out" | cut -f1) MiB in $((SECONDS - started)) s"
    fi
    echo "$out"
}

# base_image NAME TARBALL: the tarball as the first layer of tag base-NAME-<key>.
base_image() {
    local name="$1" tarball="$2"
    local tag
    tag="base-$name-$(basename "$tarball" .tar | sed 's/.*-//')"
    if [[ "$FORCE" == 1 ]] || ! has_tag "$tag"; then
        umoci new --image "$LAYOUT:$tag"
        umoci raw add-layer --image "$LAYOUT:$tag" --history.created_by "mmdebstrap $SUITE" "$tarball"
    fi
    echo "$tag"
}

# to_archive TAG NAME: the OCI tag as a docker-archive named like the engine path's.
to_archive() {
    local tag="$1" name="$2" out
    out="$(archive_of "$name")"
    local stamp="$out.source"
    if [[ "$FORCE" != 1 && -s "$out" && -f "$stamp" && "$(cat "$stamp")" == "$tag" ]]; then
        return
    fi
    rm -f "$out"
    skopeo copy --quiet "oci:$LAYOUT:$tag" "docker-archive:$out:$(tag_of "$name")" >&2
    echo "$tag" >"$stamp"
}

config_app() {
    local from="$1" to="$2"
    umoci config --image "$LAYOUT:$from" --tag "$to" --config.user 10001 \
        --config.entrypoint jobqueue --config.cmd --help --config.workingdir / \
        --config.env "$PATH_ENV" --config.env LANG=C.UTF-8 --config.env PYTHONUNBUFFERED=1
}

local_jobqueue() {
    local tarball base deps_key deps_tag app_key app_tag final
    tarball=$(rootfs_tarball python "python3,python3-venv,ca-certificates")
    base=$(base_image python "$tarball")
    deps_key=$(printf '%s\n' "$base" \
        "$(cd "$ROOT" && "$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"])')" | sha)
    deps_tag="deps-$deps_key"
    app_key=$(printf '%s\n' "$deps_tag" "$(tree_hash runtime operator pyproject.toml README.md)" | sha)
    app_tag="app-$app_key"
    final="jobqueue-$app_key"
    if [[ "$FORCE" != 1 ]] && has_tag "$final"; then
        log "jobqueue:dev is up to date ($final)"
        to_archive "$final" jobqueue
        return
    fi
    local work="$CACHE/work/$deps_tag"
    local wheels
    wheels=$(mktemp -d "$CACHE/wheels.XXXXXX")
    CLEANUP+=("$wheels")
    if [[ "$FORCE" == 1 ]] || ! has_tag "$deps_tag" || [[ ! -x "$work/rootfs$VENV/bin/python" ]]; then
        log "deps layer: pip wheel . (dependencies), venv $VENV"
        "$PYTHON" -m pip wheel --quiet --wheel-dir "$wheels/deps" "$ROOT" >&2
        rm -f "$wheels"/deps/jobqueue-*.whl
        rm -rf "$work"
        mkdir -p "$work/rootfs"
        tar -xf "$tarball" -C "$work/rootfs"
        chroot "$work/rootfs" /usr/bin/python3 -m venv "$VENV"
        mkdir -p "$work/rootfs/tmp/wheels"
        cp "$wheels"/deps/*.whl "$work/rootfs/tmp/wheels/"
        local inside=()
        for w in "$work"/rootfs/tmp/wheels/*.whl; do inside+=("/tmp/wheels/$(basename "$w")"); done
        chroot "$work/rootfs" "$VENV/bin/pip" install --quiet --no-index --no-cache-dir \
            --disable-pip-version-check "${inside[@]}" >&2
        rm -rf "$work/rootfs/tmp/wheels"
        umoci insert --image "$LAYOUT:$base" --tag "$deps_tag" \
            --history.created_by "pip install dependencies into $VENV" "$work/rootfs$VENV" "$VENV"
    fi
    log "app layer: pip wheel --no-deps ."
    "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$wheels/app" "$ROOT" >&2
    local stage=/tmp/app-stage
    rm -rf "$work/rootfs$stage" "$work/rootfs/tmp/wheels"
    mkdir -p "$work/rootfs/tmp/wheels"
    local wheel
    wheel=$(basename "$(ls "$wheels"/app/jobqueue-*.whl)")
    cp "$wheels/app/$wheel" "$work/rootfs/tmp/wheels/"
    # --root: only jobqueue's own files land in the stage, i.e. in the new layer.
    chroot "$work/rootfs" "$VENV/bin/pip" install --quiet --no-index --no-deps --no-cache-dir \
        --disable-pip-version-check --no-warn-script-location --root "$stage" "/tmp/wheels/$wheel" >&2
    umoci insert --image "$LAYOUT:$deps_tag" --tag "$app_tag" \
        --history.created_by "pip install jobqueue" "$work/rootfs$stage$VENV" "$VENV"
    rm -rf "$work/rootfs$stage" "$work/rootfs/tmp/wheels"
    config_app "$app_tag" "$final"
    umoci rm --image "$LAYOUT:$app_tag"
    to_archive "$final" jobqueue
}

# prune: drop the tags of earlier app builds (each is a few hundred kB of
# layer, but a source change per run adds up) and their blobs.
prune() {
    local keep tag
    keep=" $(cat "$CACHE"/*.tar.source 2>/dev/null | tr '\n' ' ') "
    for tag in $(umoci ls --layout "$LAYOUT"); do
        case "$tag" in
            app-* | jobqueue-* | e2e-* | postgres-*) [[ "$keep" == *" $tag "* ]] || umoci rm --image "$LAYOUT:$tag" ;;
        esac
    done
    umoci gc --layout "$LAYOUT"
}

local_e2e() {
    local module="$ROOT/tests/e2e/worker_handlers.py"
    local app
    app=$(cat "$(archive_of jobqueue).source" 2>/dev/null || true)
    [[ -n "$app" ]] && has_tag "$app" || die "build jobqueue first"
    local tag
    tag="e2e-$(printf '%s\n' "$app" "$(sha256sum <"$module")" | sha)"
    if [[ "$FORCE" == 1 ]] || ! has_tag "$tag"; then
        umoci insert --image "$LAYOUT:$app" --tag "$tag" \
            --history.created_by "e2e handler module" "$module" "$SITE/jobqueue_e2e.py"
    fi
    to_archive "$tag" e2e
}

local_postgres() {
    local tarball base tag
    tarball=$(rootfs_tarball postgres "postgresql,ca-certificates" "$ROOT/hack/image/postgres-hook.sh")
    base=$(base_image postgres "$tarball")
    tag="postgres-$(printf '%s\n' "$base" "$(sha256sum <"$ROOT/hack/image/postgres-entrypoint.sh")" | sha)"
    if [[ "$FORCE" == 1 ]] || ! has_tag "$tag"; then
        umoci insert --image "$LAYOUT:$base" --tag "$tag.files" \
            --history.created_by "postgres entrypoint" \
            "$ROOT/hack/image/postgres-entrypoint.sh" /usr/local/bin/jobqueue-postgres
        umoci config --image "$LAYOUT:$tag.files" --tag "$tag" --config.user 10001 \
            --config.entrypoint /usr/local/bin/jobqueue-postgres --config.workingdir / \
            --config.env "PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin" \
            --config.env LANG=C.UTF-8 --config.env PGDATA=/var/lib/postgresql/data/pgdata \
            --config.exposedports 5432/tcp
        umoci rm --image "$LAYOUT:$tag.files"
    fi
    to_archive "$tag" postgres
}

# ---- loading into a cluster ---------------------------------------------------

containerd_address() {
    if [[ -n "${JOBQUEUE_CONTAINERD_ADDRESS:-}" ]]; then echo "$JOBQUEUE_CONTAINERD_ADDRESS"; return; fi
    local dir="${JOBQUEUE_CLUSTER_DIR:-$HOME/.cache/jobqueue/cluster}" sock
    sock=$(find "$dir" -maxdepth 4 -name containerd.sock -type s 2>/dev/null | head -n 1)
    [[ -n "$sock" ]] && echo "$sock"
}

load() {
    local e="$1" name archive
    shift
    local sock
    sock=$(containerd_address || true)
    for name in "$@"; do
        archive="$(archive_of "$name")"
        [[ -s "$archive" ]] || die "$archive is missing: run hack/image.sh build $name"
        if [[ -n "$sock" ]]; then
            log "loading $(tag_of "$name") into containerd at $sock"
            ctr --address "$sock" -n k8s.io images import \
                ${JOBQUEUE_CTR_SNAPSHOTTER:+--snapshotter "$JOBQUEUE_CTR_SNAPSHOTTER"} "$archive" >&2
        elif command -v kind >/dev/null 2>&1 && kind get clusters 2>/dev/null | grep -q .; then
            log "loading $(tag_of "$name") into kind"
            kind load image-archive "$archive" --name "${KIND_CLUSTER:-kind}" >&2
        elif [[ "$e" != local ]]; then
            log "$(tag_of "$name") is in $e"
        else
            die "no cluster to load into (hack/cluster.sh up, or set JOBQUEUE_CONTAINERD_ADDRESS)"
        fi
    done
}

# ---- main -------------------------------------------------------------------

CLEANUP=()
cleanup() { if ((${#CLEANUP[@]})); then rm -rf "${CLEANUP[@]}"; fi; }
trap cleanup EXIT

cmd=build
case "${1:-}" in build | load | archive) cmd="$1"; shift ;; esac
do_load=0
names=()
for arg in "$@"; do
    case "$arg" in
        --load) do_load=1 ;;
        -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
        *) tag_of "$arg" >/dev/null; names+=("$arg") ;;
    esac
done
((${#names[@]})) || names=("${ALL_IMAGES[@]}")

if [[ "$cmd" == archive ]]; then archive_of "${names[0]}"; exit 0; fi
mkdir -p "$CACHE"
ENGINE=$(engine)
if [[ "$cmd" == build ]]; then
    started=$SECONDS
    if [[ "$ENGINE" == local ]]; then
        [[ "$(id -u)" == 0 ]] || die "without a Docker/Podman engine the image is built with chroot: run as root"
        need_tools
        exec 9>"$CACHE/.lock"
        flock 9
    fi
    # e2e builds on jobqueue: keep that order.
    for name in jobqueue postgres e2e; do
        [[ " ${names[*]} " == *" $name "* ]] || continue
        if [[ "$ENGINE" == local ]]; then "local_$name"; else engine_build "$ENGINE" "$name"; fi
        log "$(tag_of "$name") -> $(archive_of "$name")"
    done
    if [[ "$ENGINE" == local ]]; then prune; fi
    log "built ${names[*]} with $ENGINE in $((SECONDS - started)) s"
fi
if [[ "$cmd" == load || "$do_load" == 1 ]]; then load "$ENGINE" "${names[@]}"; fi
for name in "${names[@]}"; do archive_of "$name"; done
