"""faceapp.gui.workers: generator and function workers on their own threads (no models)."""

from __future__ import annotations

import threading
import time

import pytest

from faceapp.errors import CameraUnavailable
from faceapp.gui.workers import Worker, WorkerPool


@pytest.fixture
def pool(qapp):
    p = WorkerPool()
    yield p
    assert p.stop_all(2000)


def _catch(catcher, worker: Worker):
    return catcher(yielded=worker.yielded, returned=worker.returned, errored=worker.errored, finished=worker.finished)


def test_a_generator_worker_stops_cooperatively_when_asked(qtbot, pool, catcher):
    threads = []

    def forever(*, is_cancelled):
        threads.append(threading.current_thread())
        i = 0
        while not is_cancelled():
            yield i
            i += 1
            time.sleep(0.005)

    worker = Worker(forever, cancellable=True)
    catch = _catch(catcher, worker)
    pool.start(worker)
    qtbot.waitUntil(lambda: "yielded" in catch.names(), timeout=5000)
    t0 = time.monotonic()
    assert pool.stop(worker, 2000)
    assert time.monotonic() - t0 < 1.0
    qtbot.waitUntil(lambda: "finished" in catch.names(), timeout=2000)
    assert pool.running() == []
    assert threads[0] is not threading.main_thread()


def test_an_exception_in_a_worker_is_sent_not_raised(qtbot, pool, catcher):
    def broken(*, is_cancelled):
        yield 1
        raise CameraUnavailable("camera 0 stopped delivering frames (unplugged?)")

    worker = Worker(broken, cancellable=True)
    catch = _catch(catcher, worker)
    pool.start(worker)
    qtbot.waitUntil(lambda: "finished" in catch.names(), timeout=5000)
    assert catch.names() == ["yielded", "errored", "finished"]
    (exc,) = catch.args("errored")
    assert isinstance(exc, CameraUnavailable) and "unplugged" in str(exc)


def test_a_function_worker_returns_its_value_from_another_thread(qtbot, pool, catcher):
    worker = Worker(lambda a, b: (a + b, threading.current_thread()), 2, 3)
    catch = _catch(catcher, worker)
    pool.start(worker)
    qtbot.waitUntil(lambda: "finished" in catch.names(), timeout=5000)
    total, thread = catch.args("returned")[0]
    assert total == 5 and thread is not threading.main_thread()
