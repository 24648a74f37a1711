"""Worker threads: the core's functions and generators run off the GUI thread.

A :class:`Worker` wraps a function. When the function returns a generator, each value it
yields is sent with ``yielded``; otherwise its return value is sent with ``returned``. An
exception is sent with ``errored`` (the thread never dies from it), and ``finished`` always
comes last. Stopping is cooperative: :meth:`Worker.quit` sets a flag that the generator sees
through the ``is_cancelled`` callable it was given (``cancellable=True``) and that the worker
checks between yields. Nothing here calls ``QThread.terminate()`` or ``sys.exit``.

:class:`WorkerPool` moves workers to their own QThread, keeps them alive while they run and
stops them all (waiting for each) when the window closes.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)


class Worker(QObject):
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)  # the exception
    finished = Signal()

    def __init__(self, func: Callable[..., Any], *args: Any, cancellable: bool = False, name: str = "", **kwargs: Any) -> None:
        super().__init__()
        self._func = func
        self._args = args
        self._kwargs = kwargs
        self._quit = threading.Event()
        self.name = name or getattr(func, "__name__", "worker")
        if cancellable:
            self._kwargs["is_cancelled"] = self._quit.is_set
        self.done = threading.Event()  # set after ``finished`` was emitted

    def quit(self) -> None:
        """Ask the worker to stop at its next chance (thread-safe, returns at once)."""
        self._quit.set()

    @property
    def cancelled(self) -> bool:
        return self._quit.is_set()

    @Slot()
    def run(self) -> None:
        try:
            result = self._func(*self._args, **self._kwargs)
            if inspect.isgenerator(result):
                try:
                    for value in result:
                        if self._quit.is_set():
                            break
                        self.yielded.emit(value)
                finally:
                    result.close()
            elif not self._quit.is_set():
                self.returned.emit(result)
        except Exception as exc:  # shown by the GUI, never kills the thread
            log.debug("worker %s failed", self.name, exc_info=True)
            self.errored.emit(exc)
        finally:
            self.done.set()
            self.finished.emit()


class WorkerPool(QObject):
    """Starts workers on their own threads and keeps both alive until the thread ends."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[Worker, QThread] = {}

    def start(self, worker: Worker) -> Worker:
        thread = QThread()
        thread.setObjectName(f"faceapp-{worker.name}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: quit the thread's loop from the worker's own thread, so stop() can block the
        # GUI thread in wait() without waiting for a queued call that could never run.
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._reap)
        self._running[worker] = thread
        thread.start()
        return worker

    @Slot()
    def _reap(self) -> None:
        for worker, thread in list(self._running.items()):
            if thread.isFinished():
                thread.wait()
                del self._running[worker]

    def running(self) -> list[Worker]:
        return [w for w, t in self._running.items() if not t.isFinished()]

    def stop(self, worker: Worker, timeout_ms: int = 5000) -> bool:
        """Ask one worker to quit and wait for its thread; True if it ended in time."""
        worker.quit()
        thread = self._running.get(worker)
        if thread is None:
            return True
        ok = thread.wait(timeout_ms)
        if ok:
            self._running.pop(worker, None)
        else:
            log.warning("worker %s did not stop within %d ms", worker.name, timeout_ms)
        return ok

    def stop_all(self, timeout_ms: int = 5000) -> bool:
        for worker in list(self._running):
            worker.quit()
        ok = True
        for worker in list(self._running):
            ok = self.stop(worker, timeout_ms) and ok
        return ok
