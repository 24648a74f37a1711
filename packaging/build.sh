#!/usr/bin/env bash
# Build the Linux installer from a clean checkout:  bash packaging/build.sh
#   1. build/venv: a separate venv with the CPU build of torch (only to export), onnx,
#      onnxruntime, PyInstaller and the app's runtime packages (packaging/requirements-build.txt);
#   2. export MTCNN's P/R/O nets and the embedder to ONNX (build/onnx);
#   3. PyInstaller (packaging/faceapp.spec) -> dist/faceapp/ (no torch inside: checked);
#   4. dist/faceapp_<version>_<arch>.deb (packaging/linux/build_deb.sh).
# Options: --no-deb (stop after the bundle); FACEAPP_DEB_COMPRESS=xz for a smaller, slower .deb.
# Runs niced (shared machines); idempotent: the venv is reused while its requirements match.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${FACEAPP_BUILD_VENV:-$ROOT/build/venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
NICE=(nice -n 10)
log() { printf '[build] %s\n' "$*" >&2; }
t_start=$(date +%s)

# 1. the build venv
stamp="$(sha256sum packaging/requirements-build.txt | cut -c1-16)"
if [ ! -f "$VENV/.faceapp-build-stamp" ] || [ "$(cat "$VENV/.faceapp-build-stamp")" != "$stamp" ]; then
  log "creating $VENV (first time: a few minutes)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  PIP=("${NICE[@]}" "$VENV/bin/python" -m pip --disable-pip-version-check -q)
  quiet() { grep -v '^WARNING: Location' >&2 || true; }  # pip's notes on absent local index folders
  "${PIP[@]}" install -r packaging/requirements-build.txt 2> >(quiet)
  # facenet-pytorch pins torch<2.3 in its metadata (see scripts/setup.sh): install without its pins
  "${PIP[@]}" install --no-deps facenet-pytorch==2.6.0 2> >(quiet)
  echo "$stamp" > "$VENV/.faceapp-build-stamp"
fi
PYV=("${NICE[@]}" env PYTHONPATH="$ROOT" "$VENV/bin/python")

# 2. ONNX export (torch CPU; torchvision is absent, faceapp.runtime.torchvision_shim stands in)
ONNX_DIR=$ROOT/build/onnx
rm -rf "$ONNX_DIR"
log "exporting the networks to ONNX"
"${PYV[@]}" -m faceapp.runtime.export "$ONNX_DIR" > build/onnx-export.json

# 3. PyInstaller
log "freezing with PyInstaller"
rm -rf dist/faceapp
FACEAPP_ONNX_BUILD_DIR=$ONNX_DIR "${NICE[@]}" "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/faceapp.spec 2> build/pyinstaller.log \
  || { tail -40 build/pyinstaller.log >&2; exit 1; }
if find dist/faceapp -name 'libtorch*' -o -type d -name torch | grep -q .; then
  echo "torch leaked into the bundle" >&2; exit 1
fi
dist/faceapp/faceapp --version >&2
log "bundle: $(du -sh dist/faceapp | cut -f1) in dist/faceapp"
[ "${1:-}" = --no-deb ] && exit 0

# 4. the .deb
if command -v dpkg-deb >/dev/null; then
  log "building the .deb"
  deb=$("${NICE[@]}" bash packaging/linux/build_deb.sh "$ROOT/dist/faceapp" "$ROOT/dist")
  log "wrote $deb ($(du -h "$deb" | cut -f1))"
else
  log "dpkg-deb not found: skipping the .deb (the bundle is in dist/faceapp)"
fi
log "done in $(( $(date +%s) - t_start )) s"
