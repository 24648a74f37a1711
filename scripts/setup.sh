#!/usr/bin/env bash
# One-time (idempotent, fast when nothing changed) set-up of everything faceapp needs:
#   - Debian packages Qt needs to run (offscreen and under Xvfb), and PostgreSQL's server
#     binaries (the tests run the store on a throwaway cluster of their own), when run as
#     root with apt;
#   - a virtual environment in .venv with torch, torchvision, facenet-pytorch and the rest;
#   - faceapp itself, installed editable.
# Re-running it only redoes what changed (it keeps a stamp of the requirements it installed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${FACEAPP_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*" >&2; }

# -- system packages (Qt's runtime libraries, Xvfb for real-window screenshots, and
# PostgreSQL, whose initdb / pg_ctl in /usr/lib/postgresql/*/bin the tests use) -------------
APT_PKGS="libegl1 libgl1 libopengl0 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xinerama0
 libxcb-xkb1 libxcb-cursor0 libxrender1 libxi6 xvfb xauth imagemagick fonts-dejavu-core postgresql"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ -z "${FACEAPP_SKIP_APT:-}" ]; then
  missing=$(for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    log "installing Debian packages: $(echo $missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
elif [ -z "${FACEAPP_SKIP_APT:-}" ]; then
  log "not root: skipping Debian packages (Qt and the PostgreSQL tests need: $(echo $APT_PKGS))"
fi

# -- the Python environment ---------------------------------------------------------------
case "$(uname -m)" in
  aarch64|arm64) TORCH="torch==2.9.1 torchvision==0.24.1" ;;
  *)             TORCH="torch==2.14.1 torchvision==0.29.1" ;;
esac
FACENET="facenet-pytorch==2.6.0"
stamp_src="$TORCH|$FACENET|$(cat requirements.txt pyproject.toml | sha256sum)"
stamp_file="$VENV/.faceapp-setup-stamp"
if ! { [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_src" ] && "$VENV/bin/python" -c "import faceapp, torch, facenet_pytorch" 2>/dev/null; }; then
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
  log "installing $TORCH (first time: a few minutes)"
  "${PIP[@]}" install $TORCH
  log "installing requirements"
  "${PIP[@]}" install -r requirements.txt
  # facenet-pytorch 2.6.0 pins torch<2.3, numpy<2 and an old Pillow in its metadata but runs on
  # current ones (faceapp converts its numpy-2 object arrays): install it without its pins.
  "${PIP[@]}" install --no-deps "$FACENET"
  "${PIP[@]}" install --no-deps -e .
  echo "$stamp_src" > "$stamp_file"
  log "ready: $VENV"
fi

# -- the networks for ONNX Runtime --------------------------------------------------------
# On a CPU faceapp runs its networks with ONNX Runtime (about twice torch's speed on a small
# CPU; faceapp/runtime/__init__.py), from files exported from the shipped weights into
# resources/models/onnx (git-ignored). Only files that are missing or were made from other
# weights are written. A stamp of what the files depend on (the model specs and weights' names
# and sizes, the exporter, the exported files) skips even that check when nothing changed, so
# that starting the app does not pay the 4 s of reading every file's metadata.
# FACEAPP_SKIP_ONNX_EXPORT=1 skips this, and the networks then run on torch.
ONNX_DIR="$ROOT/resources/models/onnx"
onnx_stamp() {
  (cd "$ROOT" && ls -l --time-style=+%s resources/models "$ONNX_DIR" 2>/dev/null | grep -v " \.stamp$"
   cat resources/models/*.json resources/models/*.toml faceapp/runtime/export.py "$stamp_file" 2>/dev/null) | sha256sum
}
if [ -z "${FACEAPP_SKIP_ONNX_EXPORT:-}" ] && [ "$(cat "$ONNX_DIR/.stamp" 2>/dev/null)" != "$(onnx_stamp)" ]; then
  if out=$(OMP_NUM_THREADS=1 "$VENV/bin/python" -m faceapp.runtime.export "$ONNX_DIR" --if-stale 2>&1); then
    onnx_stamp > "$ONNX_DIR/.stamp"
  else
    log "exporting the ONNX networks failed (they will run on torch):"
    printf '%s\n' "$out" | tail -5 >&2
  fi
fi
