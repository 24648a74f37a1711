"""A file dialog on the database's folder must not drop the GUI's SQLite locks (issue 12).

SQLite locks its files with POSIX record locks, which a process loses on a file as soon as it
closes *any* descriptor of that file. Qt's file dialog sniffed the content of every ambiguous
file it listed (faceapp.db, -wal, -shm: open, read, close), so the GUI held no lock after
showing the database's folder; another process then took the database as unused and deleted
the GUI's write-ahead log, and both processes' writes were lost.

These tests play the person at the keyboard: open each page's file dialog, go to the database's
folder in the detail view, wait until it is listed, and count this process's locks in
/proc/locks (Linux) before and after.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QFileSystemModel

from faceapp.imageio import encode_jpeg

pytestmark = pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")

MODEL = "test-model"


def sqlite_locks(db: Path) -> int:
    """How many POSIX locks this process holds on ``db`` and its -wal / -shm / -journal files."""
    keys = set()
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            st = os.stat(f"{db}{suffix}")
        except FileNotFoundError:
            continue
        keys.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    n = 0
    with open("/proc/locks") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) > 1 and fields[1] == "->":  # a waiting request, not a held lock
                continue
            kind, pid, where = fields[1], int(fields[4]), fields[5].split(":")
            key = (int(where[0], 16), int(where[1], 16), int(where[2]))
            if kind == "POSIX" and pid == os.getpid() and key in keys:
                n += 1
    return n


class DialogProbe(QObject):
    """Installed on the application: when a file dialog shows, it goes to ``folder`` in the
    detail view, waits until the folder is listed, paints the dialog (so every icon and type
    is asked for), counts the locks and cancels the dialog."""

    def __init__(self, folder: Path, db: Path) -> None:
        super().__init__()
        self.folder, self.db = os.path.realpath(folder), db
        self.dialog: QFileDialog | None = None
        self.locks: int | None = None

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() == QEvent.Type.Show and isinstance(obj, QFileDialog) and self.dialog is None:
            self.dialog = obj
            obj.findChild(QFileSystemModel).directoryLoaded.connect(self._loaded)
            obj.setViewMode(QFileDialog.ViewMode.Detail)
            obj.setDirectory(self.folder)
            QTimer.singleShot(15000, obj.reject)  # never hang the suite; self.locks stays None
        return False

    def _loaded(self, path: str) -> None:
        if os.path.realpath(path) != self.folder or self.locks is not None:
            return
        self.dialog.grab()
        self.locks = sqlite_locks(self.db)
        self.dialog.reject()


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: the locks at stake are SQLite's (overrides the suite's sqlite/postgresql pair)."""
    return f"sqlite:///{tmp_path / 'faceapp.db'}"


@pytest.fixture
def folder(tmp_path) -> Path:
    """The database's folder, with photos beside it (as when they are enrolled from there)."""
    d = tmp_path / "data"
    d.mkdir()
    for i in range(2):
        (d / f"photo{i}.jpg").write_bytes(encode_jpeg(np.full((60, 60, 3), 60 * i, np.uint8)))
    (d / "notes").write_text("no extension: only its content tells what it is\n")
    return d


@pytest.fixture
def gui(qapp, folder, tmp_path):
    """The app's context on a SQLite file in ``folder`` (no face models: the dialogs do not need them)."""
    from faceapp.config import Settings
    from faceapp.gui.context import AppContext
    from faceapp.store.repository import Store

    url = f"sqlite:///{folder / 'faceapp.db'}"
    store = Store(url)
    store.log_event("start", detail="the GUI opened the database")
    settings = Settings(device="cpu", db_url=url, camera=str(tmp_path / "no-camera.avi"))
    ctx = AppContext(settings, store=store, settings_file=tmp_path / "settings.toml")
    yield ctx
    assert ctx.shutdown()
    store.close()


def _page(ctx, name):
    if name == "enroll":
        from faceapp.gui.pages.enroll import EnrollPage

        return EnrollPage(ctx)
    if name == "settings":
        from faceapp.gui.pages.settings import SettingsPage

        return SettingsPage(ctx)
    if name == "people":
        from faceapp.gui.pages.people import PeoplePage

        return PeoplePage(ctx)
    from faceapp.gui.pages.log import LogPage

    return LogPage(ctx)


def _browse(qtbot, page, method: str, folder: Path, db: Path) -> DialogProbe:
    """Open the page's file dialog ``method`` and browse ``folder`` in it (then cancel)."""
    probe = DialogProbe(folder, db)
    app = QApplication.instance()
    app.installEventFilter(probe)
    try:
        getattr(page, method)()
    finally:
        app.removeEventFilter(probe)
    assert probe.dialog is not None, f"{method} showed no file dialog"
    assert probe.locks is not None, "the dialog never listed the database's folder"
    return probe


@pytest.mark.parametrize(
    "page_name, method",
    [
        ("enroll", "open_dialog"),
        ("settings", "_pick_db"),
        ("settings", "_pick_video"),
        ("settings", "_pick_folder"),
        ("people", "import_dialog"),
        ("people", "export_dialog"),
        ("log", "export_dialog"),
    ],
)
def test_a_file_dialog_on_the_database_folder_keeps_the_sqlite_locks(qtbot, gui, folder, page_name, method):
    page = _page(gui, page_name)
    qtbot.addWidget(page)
    db = folder / "faceapp.db"
    before = sqlite_locks(db)
    assert before > 0, "an open WAL database holds locks (else this test measures nothing)"
    probe = _browse(qtbot, page, method, folder, db)
    assert probe.locks == before
    assert sqlite_locks(db) == before


OTHER_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from faceapp.store.repository import Store

    for line in sys.stdin:  # one run of `faceapp people` (or `faceapp enroll NAME`) per line
        with Store(sys.argv[1]) as s:
            seen = [p.name for p in s.list_people()]
            name = line.strip()
            if name:
                emb = np.zeros(128, np.float32); emb[1] = 1.0
                s.add_person(name, embedding=emb, model_id="test-model", quality=50.0, face_jpeg=b"jpeg")
                s.log_event("enroll", decided=name, detail="from another process")
        print(json.dumps(seen), flush=True)
    """
)


class OtherProcess:
    """Another faceapp process on the database, as the shell's ``faceapp people`` / ``faceapp
    enroll``: each :meth:`run` opens the database, reads (and enrolls ``name``) and closes it
    again, as a command does. One Python process for all runs keeps the test fast."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OTHER_PROCESS, url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def run(self, name: str = "") -> list[str]:
        """The names it sees (before enrolling ``name``, when given)."""
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the other process failed: {self.proc.communicate(timeout=60)[1]}")
        return json.loads(line)

    def __enter__(self) -> OtherProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def test_no_write_is_lost_when_another_process_uses_the_database_after_a_dialog(qtbot, gui, folder):
    from faceapp.store.repository import Store

    page = _page(gui, "enroll")
    qtbot.addWidget(page)
    db = folder / "faceapp.db"
    url = f"sqlite:///{db}"
    store = gui.store
    _browse(qtbot, page, "open_dialog", folder, db)

    emb = np.zeros(128, np.float32)
    emb[0] = 1.0
    with OtherProcess(url) as other:
        assert other.run() == []  # `faceapp people` from a shell: nobody enrolled yet
        store.add_person("Serena W.", embedding=emb, model_id=MODEL, quality=50.0, face_jpeg=b"jpeg")  # the GUI enrolls
        assert other.run("Cli Person") == ["Serena W."]  # the shell sees her, and enrolls someone
    store.log_event("door", decided="Serena W.", detail="the GUI again")
    store.close()  # the window closes

    with Store(url) as after:
        assert sorted(p.name for p in after.list_people()) == ["Cli Person", "Serena W."]
        details = {e.detail for e in after.events(limit=100)}
    assert {"the GUI opened the database", "from another process", "the GUI again"} <= details
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def test_a_dialog_refuses_the_database_files_and_stays_open(qtbot, gui, folder):
    from PySide6.QtWidgets import QMessageBox

    from faceapp.gui import dialogs

    db = folder / "faceapp.db"
    dialog = dialogs.FileDialog(None, "Open a photo", str(folder), protected=dialogs.database_files(gui))
    qtbot.addWidget(dialog)
    dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    dialog.show()
    for name in ("faceapp.db", "faceapp.db-wal"):
        dialog.selectFile(str(folder / name))
        dialog.accept()
        assert dialog.isVisible() and dialog.result() != QFileDialog.DialogCode.Accepted
        assert dialog.last_refusal == f"{name} is one of the app's own database files; pick another file."
        [box] = [w for w in dialog.findChildren(QMessageBox) if w.isVisible()]
        box.close()
    dialog.selectFile(str(folder / "photo0.jpg"))
    dialog.accept()
    assert dialog.result() == QFileDialog.DialogCode.Accepted
    assert dialog.selectedFiles() == [str(folder / "photo0.jpg")]
    assert sqlite_locks(db) > 0


def test_the_database_picker_accepts_the_database_but_not_its_log(gui, folder):
    from faceapp.gui import dialogs

    protected = dialogs.database_files(gui, include_database=False)
    assert dialogs.refusal(folder / "faceapp.db", protected) is None
    assert dialogs.refusal(folder / "faceapp.db-shm", protected) is not None


def test_the_database_files_are_recognised_under_another_name(gui, folder):
    from faceapp.gui import dialogs

    protected = dialogs.database_files(gui)
    assert dialogs.refusal(folder / "photo0.jpg", protected) is None
    assert dialogs.refusal(folder / ".." / "data" / "faceapp.db", protected) is not None
    (folder / "link.jpg").symlink_to(folder / "faceapp.db")
    assert dialogs.refusal(folder / "link.jpg", protected) is not None
    os.link(folder / "faceapp.db", folder / "hard.jpg")
    assert dialogs.refusal(folder / "hard.jpg", protected) is not None


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "postgresql://u@localhost/faceapp"])
def test_other_databases_have_no_files_to_protect(url):
    from faceapp.gui import dialogs

    assert dialogs.database_path(url) is None


def test_the_database_dropped_on_the_enroll_page_is_refused_without_reading_it(qtbot, ctx, tmp_path):
    """With the models ready (the app's usual state), a dropped file is read as a photo."""
    from faceapp.gui.pages.enroll import EnrollPage

    page = EnrollPage(ctx)
    qtbot.addWidget(page)
    db = tmp_path / "faceapp.db"
    assert ctx.ready and Path(ctx.store.engine.url.database) == db
    before = sqlite_locks(db)
    with qtbot.waitSignal(page.failed, timeout=30000) as blocker:
        page.load_file(db)  # what a drop of faceapp.db on the page does
    assert blocker.args == ["faceapp.db is one of the app's own database files; pick another file."]
    assert sqlite_locks(db) == before > 0


def test_every_file_dialog_of_the_gui_comes_from_the_helper():
    import faceapp.gui

    root = Path(faceapp.gui.__file__).parent
    users = sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py") if "QFileDialog" in p.read_text(encoding="utf-8")
    )
    assert users == ["dialogs.py"]
