"""File dialogs that never open the app's own database files.

SQLite guards a database with POSIX record locks, and POSIX drops *every* lock that a process
holds on a file as soon as the process closes *any* descriptor of that file. Qt's file dialog
asks its icon provider for each listed file's type; the default provider asks
``QMimeDatabase``, which opens a file to sniff its content whenever the name alone is
ambiguous (``faceapp.db``, ``faceapp.db-wal``, ``faceapp.db-shm``). So merely showing the
database's folder in a file dialog dropped the GUI's SQLite locks: another faceapp process then
found the database unused, checkpointed and deleted the GUI's write-ahead log, and writes of
both processes were lost.

Every file dialog of the app therefore comes from here (:func:`open_file`, :func:`save_file`,
:func:`existing_folder`):

- Qt's own (non-native) dialog, always: only that one uses our icon provider, and it runs the
  same on every platform (a native dialog may sniff files in-process too);
- :class:`NameOnlyIconProvider`, which names a file's type and picks its icon from the name
  and the kind of entry (file / folder) alone - it never reads a file, so the dialog's model
  never opens one;
- a choice of one of the database's files (:func:`database_files`) as a photo, video, gallery
  or export target is refused inside the dialog: opening it would drop the locks just the same,
  and writing to it would destroy the database.

:func:`refusal` is the same check for paths that arrive another way (a file dropped on a page).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtGui import QAbstractFileIconProvider
from PySide6.QtWidgets import QFileDialog, QFileIconProvider, QMessageBox, QWidget

log = logging.getLogger(__name__)

# The files SQLite keeps beside a database ``x.db``: x.db-wal, x.db-shm, x.db-journal.
SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")


def database_path(url) -> Path | None:
    """The file of a SQLite database URL (str or SQLAlchemy URL); None for in-memory
    databases, ``file:`` URIs and other databases (whose files this process never opens)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from faceapp.store.db import is_sqlite_memory

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or is_sqlite_memory(parsed):
        return None
    database = parsed.database or ""
    if not database or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def database_files(ctx, *, include_database: bool = True) -> frozenset[Path]:
    """The SQLite files of the app's database (the open store's, else the configured one):
    the database and its -wal, -shm and -journal files, absolute and with symlinks resolved.
    ``include_database=False`` leaves out the database itself (for the database picker).
    Empty when the database is not a SQLite file."""
    store = getattr(ctx, "store", None)
    url = store.engine.url if store is not None else ctx.settings.resolved_db_url
    path = database_path(url)
    if path is None:
        return frozenset()
    main = Path(os.path.realpath(path))
    files = {Path(f"{main}{suffix}") for suffix in SIDECAR_SUFFIXES}
    if include_database:
        files.add(main)
    return frozenset(files)


def refusal(path: str | os.PathLike[str], protected: Iterable[Path]) -> str | None:
    """Why ``path`` must not be used (it is one of the ``protected`` database files), or None.

    Compared by resolved path, and by device and inode for files that exist (a hard link or
    another spelling of the same file); the check only stats, it never opens anything."""
    protected = frozenset(protected)
    if not protected or not os.fspath(path):
        return None
    real = Path(os.path.realpath(path))
    hit = real in protected
    if not hit:
        try:
            st = os.stat(real)
        except OSError:
            st = None
        if st is not None:
            for p in protected:
                try:
                    other = os.stat(p)
                except OSError:
                    continue
                if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                    hit = True
                    break
    if not hit:
        return None
    return f"{real.name} is one of the app's own database files; pick another file."


class NameOnlyIconProvider(QFileIconProvider):
    """Types and icons from a file's name and kind only (Qt's default reads the file's content
    to guess its MIME type, and the platform theme may too)."""

    def type(self, info) -> str:  # noqa: A003 - Qt's name
        if info.isDir():
            return "Folder"
        suffix = info.suffix()
        return f"{suffix.upper()} file" if suffix else "File"

    def icon(self, what):
        if isinstance(what, QAbstractFileIconProvider.IconType):
            return super().icon(what)
        kind = QAbstractFileIconProvider.IconType.Folder if what.isDir() else QAbstractFileIconProvider.IconType.File
        return super().icon(kind)


class FileDialog(QFileDialog):
    """Qt's own file dialog with :class:`NameOnlyIconProvider`, which refuses (and stays open
    on) a choice of one of the ``protected`` files. ``last_refusal`` holds the last refusal."""

    def __init__(
        self,
        parent: QWidget | None,
        caption: str,
        directory: str = "",
        name_filter: str = "",
        *,
        protected: Iterable[Path] = (),
    ) -> None:
        super().__init__(parent, caption, directory, name_filter)
        self.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        self.setOption(QFileDialog.Option.DontUseCustomDirectoryIcons, True)
        self._icons = NameOnlyIconProvider()  # the dialog does not own it: keep it alive
        self.setIconProvider(self._icons)
        self._protected = frozenset(protected)
        self.last_refusal: str | None = None
        self._box: QMessageBox | None = None

    def accept(self) -> None:
        for path in self.selectedFiles():
            why = refusal(path, self._protected)
            if why is not None:
                log.info("file dialog: refused %s", path)
                self.last_refusal = why
                self._box = QMessageBox(
                    QMessageBox.Icon.Warning, self.windowTitle(), why, QMessageBox.StandardButton.Ok, self
                )
                self._box.open()  # window-modal, does not block: the dialog stays open for another choice
                return
        super().accept()


def _run(dialog: FileDialog) -> str:
    try:
        if dialog.exec() == QFileDialog.DialogCode.Accepted:
            files = dialog.selectedFiles()
            return files[0] if files else ""
        return ""
    finally:
        dialog.deleteLater()


def open_file(
    parent: QWidget | None, caption: str, name_filter: str = "", *, directory: str = "", protected: Iterable[Path] = ()
) -> str:
    """The path of an existing file the person picked, or "" (like ``QFileDialog.getOpenFileName``)."""
    dialog = FileDialog(parent, caption, directory, name_filter, protected=protected)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
    dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    return _run(dialog)


def save_file(
    parent: QWidget | None,
    caption: str,
    default_name: str = "",
    name_filter: str = "",
    *,
    protected: Iterable[Path] = (),
    confirm_overwrite: bool = True,
) -> str:
    """The path to write that the person picked, or "" (like ``QFileDialog.getSaveFileName``);
    ``default_name`` may be a bare file name (in the last folder used) or a path."""
    dialog = FileDialog(parent, caption, default_name, name_filter, protected=protected)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setOption(QFileDialog.Option.DontConfirmOverwrite, not confirm_overwrite)
    return _run(dialog)


def existing_folder(parent: QWidget | None, caption: str, *, directory: str = "") -> str:
    """The folder the person picked, or "" (like ``QFileDialog.getExistingDirectory``)."""
    dialog = FileDialog(parent, caption, directory)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    return _run(dialog)
