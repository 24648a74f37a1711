"""What every page has: a title, whether it needs the camera, and show/hide hooks."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from faceapp.gui.context import AppContext


class Page(QWidget):
    title = ""
    needs_camera = False

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def activate(self) -> None:
        """The page became the visible one."""

    def deactivate(self) -> None:
        """Another page became the visible one."""
