#!/usr/bin/env bash
# A separate Python environment for the reference pipelines of scripts/eval_reference.py:
# dlib's own (face_recognition: HOG detector, 5-point shape predictor, dlib's face chip and
# ResNet descriptors) and OpenCV's SFace (YuNet + FaceRecognizerSF).
#
# It is never the project's .venv: dlib is no dependency of faceapp, it is only the yardstick.
# As for the dlib conversion check (scripts/convert_dlib_model.py), dlib comes from the
# prebuilt wheel dlib-bin; face_recognition and face-recognition-models are installed with
# --no-deps (face_recognition would otherwise pull the source package dlib and build it).
#
# Usage:  bash scripts/setup_reference_env.sh [VENV_DIR]
#   VENV_DIR defaults to $FACEAPP_CACHE/reference-env, else ~/.cache/faceapp/reference-env.
# Then:   VENV_DIR/bin/python scripts/eval_reference.py PAIRS.csv --pipeline dlib
# Re-running is cheap: pip skips what is installed; a stamp file records success.
set -euo pipefail

CACHE="${FACEAPP_CACHE:-$HOME/.cache/faceapp}"
VENV="${1:-$CACHE/reference-env}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

REPO="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$(dirname "$VENV")"
VENV="$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")"
case "$VENV/" in
  "$REPO/.venv/"*) echo "setup_reference_env: refusing to install into the project's .venv" >&2; exit 2 ;;
esac
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# face_recognition_models reads its files with pkg_resources, which setuptools 81 dropped.
"${PIP[@]}" install "setuptools<81" wheel
# The pipelines' own numeric stack (opencv 4.10+ has FaceDetectorYN / FaceRecognizerSF with
# the YuNet 2023+ output layout; onnx is used to drop SFace's unused graph inputs).
"${PIP[@]}" install "numpy>=1.26" "pillow>=10" "opencv-python-headless>=4.10" "onnx>=1.16"
# dlib, prebuilt; face_recognition and its model files without their declared dependencies.
"${PIP[@]}" install "dlib-bin>=19.24"
"${PIP[@]}" install --no-deps "face-recognition-models==0.3.0" "face_recognition==1.3.0"
# face_recognition's API module imports nothing else; its CLI would need click (not used here).

"$VENV/bin/python" - <<'EOF'
import cv2, dlib, face_recognition, face_recognition_models, numpy, onnx
print(f"reference env ok: dlib {dlib.__version__}, face_recognition {face_recognition.__version__}, "
      f"opencv {cv2.__version__}, numpy {numpy.__version__}, onnx {onnx.__version__}")
EOF
date -u +%FT%TZ > "$VENV/.faceapp-reference-stamp"
echo "$VENV"
