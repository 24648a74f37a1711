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
if [ $# -gt 0 ]; then exec .venv/bin/python -m pytest "$@"; fi
# The whole suite runs the networks as the app does on this machine: with ONNX Runtime on a CPU
# (faceapp/runtime/__init__.py). A second pass runs the end-to-end pipeline tests (enrollment,
# verification, the door, tracking, evaluation, landmarks) on torch, which a GPU machine and any
# network without a current ONNX export use; the two runtimes' outputs are compared network by
# network in tests/packaging/test_onnx_backend.py.
.venv/bin/python -m pytest
echo "[tests] the end-to-end pipeline tests again on torch (FACEAPP_BACKEND=torch)" >&2
FACEAPP_BACKEND=torch exec .venv/bin/python -m pytest -q tests/test_services.py tests/test_edges.py tests/test_tracking.py \
  tests/test_door_antispoof.py tests/test_headless_door.py tests/test_eval_runner.py tests/test_detect_fixes.py \
  tests/test_enroll_lookalike.py tests/landmarks
