#!/usr/bin/env bash
# Set everything up (first time) and start faceapp. Arguments go to the faceapp command;
# with none, the desktop app starts (the CLI help when no display can be found).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE
if [ $# -eq 0 ]; then
  if .venv/bin/python -c "import faceapp.gui" 2>/dev/null; then set -- gui; else set -- --help; fi
fi
exec .venv/bin/faceapp "$@"
