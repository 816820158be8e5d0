#!/usr/bin/env bash
# Start everything on one machine on an embedded PostgreSQL (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/bootstrap.sh
exec .venv/bin/jobqueue dev "$@"
