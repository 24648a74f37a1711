#!/usr/bin/env bash
# macOS recipe: dist/faceapp.app and dist/faceapp-<version>.dmg.
# NOT BUILT OR TESTED here (this project builds and tests on Linux); run on a Mac with
# Python 3.11 (python.org or Homebrew):  bash packaging/macos/build_dmg.sh
# The app is unsigned: to hand it to other people, sign and notarize it (see docs/install.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENV=build/venv-mac
[ -x "$VENV/bin/python" ] || python3.11 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -r packaging/requirements-build.txt
"$VENV/bin/python" -m pip install -q --no-deps facenet-pytorch==2.6.0
PYTHONPATH=$ROOT "$VENV/bin/python" -m faceapp.runtime.export build/onnx
FACEAPP_ONNX_BUILD_DIR=$ROOT/build/onnx "$VENV/bin/pyinstaller" --noconfirm \
  --distpath dist --workpath build/pyinstaller packaging/faceapp.spec    # BUNDLE -> dist/faceapp.app
VERSION=$(dist/faceapp/faceapp --version | awk '{print $2}')
STAGE=build/dmg
rm -rf "$STAGE"; mkdir -p "$STAGE"
cp -R dist/faceapp.app "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname faceapp -srcfolder "$STAGE" -ov -format UDZO "dist/faceapp-$VERSION.dmg"
echo "wrote dist/faceapp-$VERSION.dmg"
# Removing: drag faceapp out of Applications. The user's data stays in
# ~/Library/Application Support/faceapp (delete that folder to remove it too).
