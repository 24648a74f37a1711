"""The desktop app (PySide6): the only Qt code of faceapp. Start it with ``faceapp gui`` or
``faceapp door``; :mod:`faceapp.gui.app` is the composition root."""
