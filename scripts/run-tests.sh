#!/usr/bin/env bash
# Set everything up (first time) and run the whole test suite, then the import-layering check.
# Datasets come from $FACEAPP_DATASETS (default: ../shared/datasets beside the repo); tests
# that need them skip with a reason when they are missing, except in CI (CI=true) where
# a missing dataset is an error. The store's tests also run on a throwaway PostgreSQL
# cluster that pytest starts and stops itself (tests/pg_cluster.py); without the server
# binaries those cases skip, except in CI, where that is an error too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
if [ -z "${FACEAPP_DATASETS:-}" ] && [ -d ../shared/datasets ]; then
  export FACEAPP_DATASETS=$(cd ../shared/datasets && pwd)
fi
if [ "${CI:-}" = "true" ]; then export FACEAPP_REQUIRE_DATASETS=1 FACEAPP_REQUIRE_POSTGRESQL=1; fi
.venv/bin/lint-imports pyproject.toml
# The app in a real X window (Xvfb): a screenshot of every screen, kept as test artifacts in
# artifacts/screenshots/ (unpixelated; docs/screenshots/ holds the pixelated ones).
if [ -n "${FACEAPP_DATASETS:-}" ] && command -v xvfb-run >/dev/null && [ -z "${FACEAPP_SKIP_SCREENSHOTS:-}" ]; then
  bash scripts/screenshots.sh artifacts/screenshots --raw
fi
exec .venv/bin/python -m pytest "$@"
