#!/usr/bin/env bash
# Run the desktop app in a real X window under Xvfb, walk through every screen and save a
# screenshot of each to docs/screenshots/<screen>.png (live, live_landmarks, enroll, door, door_denied,
# door_watch, door_verify, door_liveness, people, log, settings). Needs LFW under $FACEAPP_DATASETS (default:
# ../shared/datasets beside the repo) and xvfb-run + ImageMagick's `import`
# (Debian/Ubuntu: apt-get install -y xvfb xauth imagemagick libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshots}
if [ -z "${FACEAPP_DATASETS:-}" ] && [ -d ../shared/datasets ]; then
  export FACEAPP_DATASETS=$(cd ../shared/datasets && pwd)
fi
for tool in xvfb-run import; do
  command -v "$tool" >/dev/null || { echo "screenshots: $tool is missing (see the comment at the top of $0)" >&2; exit 1; }
done
export OMP_WAIT_POLICY=PASSIVE QT_QPA_PLATFORM=xcb
unset QT_SCALE_FACTOR
exec xvfb-run -a -s "-screen 0 1280x800x24 -dpi 96" .venv/bin/python -m faceapp.gui.screenshots "$out" "${@:2}"
