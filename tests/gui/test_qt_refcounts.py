"""Qt's signals must not eat references to Python's True and False.

PySide6 6.12.0 drops one reference to the bool it delivers to a Python slot on every emission
of a ``Signal(bool)`` (or of a ``Signal(object)`` carrying a bool). Python 3.11's True and
False are ordinary objects with a reference count: a door that emits such signals for every
frame and state change drives the count to zero and the process aborts ("bool_dealloc:
deallocating True or False"), during the day or at the latest when it exits. The app's
screenshots run (which emits a few hundred) aborted at exit that way once nothing else (torch)
held thousands of references to True. requirements.txt keeps PySide6 below 6.12.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")


SCRIPT = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class Source(QObject):
    flag = Signal(bool)
    anything = Signal(object)
src, got = Source(), []
signal = src.flag if sys.argv[1] == "bool" else src.anything
signal.connect(lambda value: got.append(value))
before = sys.getrefcount(True), sys.getrefcount(False)
for _ in range(100):  # a fresh interpreter holds only a few hundred references to True
    signal.emit(True)
    signal.emit(False)
n = len(got)
got.clear()
after = sys.getrefcount(True), sys.getrefcount(False)
print(n, before[0] - after[0], before[1] - after[1], flush=True)
"""


@pytest.mark.parametrize("kind", ["bool", "object"])
def test_emitting_bools_keeps_their_reference_counts(kind):
    """In a child process: a refcount bug aborts the interpreter at exit, which must fail this
    test, not kill the test run."""
    import subprocess

    import PySide6

    run = subprocess.run([sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.stdout.strip(), f"PySide6 {PySide6.__version__}: the emissions aborted Python: {run.stderr[-300:]}"
    delivered, lost_true, lost_false = (int(v) for v in run.stdout.split())
    assert delivered == 200
    assert (lost_true, lost_false) == (0, 0), (
        f"PySide6 {PySide6.__version__}: 200 emissions of a Signal({kind}) took {lost_true} references from True "
        f"and {lost_false} from False")
    assert run.returncode == 0, run.stderr[-500:]
