#!/usr/bin/env bash
# hack/promtool.sh -- build Prometheus's promtool into the envtest binary
# directory, for tests/operator/test_chart_values.py (`promtool check rules`
# and `promtool test rules` on the chart's PrometheusRule). hack/test.sh runs it;
# without it that test fails. The rules' metric names are checked regardless.
#
# Same caches as hack/testbin.sh, all outside the repository. A cold build
# takes about 15 minutes on 2 busy cores (Prometheus pulls every service
# discovery SDK); with a matching stamp the script exits at once. The last
# line on stdout is the binary directory.
set -euo pipefail

PROMETHEUS_VERSION="v0.316.0" # Prometheus 3.x, tagged v0.3xx.y as a Go module

CACHE_ROOT="${HOME}/.cache/jobqueue"
BIN_DIR="${JOBQUEUE_TESTBIN:-${CACHE_ROOT}/testbin}"
export GOMODCACHE="${JOBQUEUE_GOMODCACHE:-${CACHE_ROOT}/gomod}"
export GOCACHE="${JOBQUEUE_GOCACHE:-${CACHE_ROOT}/gocache}"
export CGO_ENABLED=0
export GOTOOLCHAIN=local
GO="${GO:-go}"

log() { printf '[promtool] %s\n' "$*" >&2; }

mkdir -p "$BIN_DIR"
if [[ -x "$BIN_DIR/promtool" && "$(cat "$BIN_DIR/.promtool.stamp" 2>/dev/null)" == "$PROMETHEUS_VERSION" ]]; then
    log "promtool $PROMETHEUS_VERSION already in $BIN_DIR"
else
    command -v "$GO" >/dev/null || { log "ERROR: no Go toolchain ($GO)"; exit 1; }
    log "building promtool $PROMETHEUS_VERSION (one package at a time, niced)"
    GOBIN="$BIN_DIR" nice -n 19 "$GO" install -p 1 \
        "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}"
    printf '%s\n' "$PROMETHEUS_VERSION" >"$BIN_DIR/.promtool.stamp"
fi
echo "$BIN_DIR"
