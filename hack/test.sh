#!/usr/bin/env bash
# Every check CI runs, in order: lint, types, layering, generated files, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/bootstrap.sh
. .venv/bin/activate
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::DeprecationWarning}"

# The dashboard's browser tests (tests/ui) drive Debian's chromium through
# Playwright; installed here, once, like hack/cluster.sh installs its packages.
if ! command -v chromium >/dev/null 2>&1; then
  echo "--- apt-get install chromium (browser tests)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi

echo "--- ruff"
ruff check runtime operator tests hack examples
echo "--- mypy"
mypy
echo "--- import-linter"
lint-imports
echo "--- hadolint"
hadolint Dockerfile hack/image/postgres.Dockerfile tests/e2e/Dockerfile
if [ -f hack/gen_crds.py ]; then
  echo "--- CRD drift"
  python hack/gen_crds.py --check
fi
if [ -x hack/testbin.sh ]; then
  echo "--- test binaries (kube-apiserver, etcd, helm)"
  JOBQUEUE_TESTBIN=$(hack/testbin.sh | tail -n 1)
  export JOBQUEUE_TESTBIN
  echo "--- promtool (the chart's alert rules)"
  hack/promtool.sh >/dev/null
fi
# tests/e2e (marker e2e) run on a real cluster: kind where Docker and kind
# exist, else hack/cluster.sh; images from hack/image.sh. `kubectl get hpa`
# over time and the metrics server's log land here.
export JOBQUEUE_E2E_ARTIFACTS="${JOBQUEUE_E2E_ARTIFACTS:-/tmp/jobqueue-e2e}"
echo "--- pytest"
python -m pytest -q "$@"
