"""Entry point of the frozen app (PyInstaller): the ``faceapp`` command, GUI included.

The bundle has no torch: the networks run on ONNX Runtime (faceapp.runtime)."""

import os
import sys

os.environ.setdefault("FACEAPP_BACKEND", "onnx")

if __name__ == "__main__":
    from faceapp.cli.main import main

    # Started from Finder (macOS .app) or the faceapp-gui launcher (Windows): open the app.
    gui_launcher = os.path.basename(sys.executable).lower().startswith("faceapp-gui")
    if len(sys.argv) == 1 and (gui_launcher or (sys.platform == "darwin" and ".app/" in sys.executable)):
        sys.argv.append("gui")

    sys.exit(main())
