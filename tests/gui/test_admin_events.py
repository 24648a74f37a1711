"""The admin pages' PIN checks reach the access log in the order they happened: one write at a
time (two background writes in flight could commit in either order; CI once logged a 'refused
without checking' before the 'wrong PIN ... locked' that caused it)."""

from __future__ import annotations

from faceapp.gui.window_admin import AdminEvents


class _Signal:
    def __init__(self) -> None:
        self.slots = []

    def connect(self, slot) -> None:
        self.slots.append(slot)

    def emit(self, *args) -> None:
        for s in self.slots:
            s(*args)


class _Store:
    def __init__(self) -> None:
        self.logged: list[str] = []

    def log_event(self, kind, detail):
        self.logged.append(detail)


class _Ctx:
    """Runs nothing by itself: the test finishes each background task when it chooses."""

    def __init__(self) -> None:
        self.store = _Store()
        self.store_ready = _Signal()
        self.events_changed = _Signal()
        self.tasks: list = []

    def task(self, fn, *, name, on_result, on_error):
        self.tasks.append((fn, on_result, on_error))

    def finish(self, k: int) -> None:
        fn, on_result, _ = self.tasks[k]
        on_result(fn())


def test_admin_events_are_written_by_one_writer_in_order():
    ctx = _Ctx()
    events = AdminEvents()
    events.attach(ctx)
    events("wrong admin PIN: 3 in a row; locked for 30 s")
    events("admin PIN refused without checking: locked for 30 s more")
    events("admin PIN accepted after 3 wrong PIN(s)")
    assert len(ctx.tasks) == 1  # no second writer while one is running
    ctx.finish(0)  # it takes what came while it was queued, in order
    assert ctx.store.logged == ["wrong admin PIN: 3 in a row; locked for 30 s",
                                "admin PIN refused without checking: locked for 30 s more",
                                "admin PIN accepted after 3 wrong PIN(s)"]
    assert events.pending == []
    events("admin PIN accepted")
    assert len(ctx.tasks) == 2  # the writer ended: the next check starts another
    ctx.finish(1)
    assert ctx.store.logged[-1] == "admin PIN accepted"


def test_after_a_failed_write_the_next_check_writes_what_is_pending():
    ctx = _Ctx()
    events = AdminEvents()
    events.attach(ctx)
    events("first")
    _, _, on_error = ctx.tasks[0]
    on_error(RuntimeError("database gone"))  # the writer failed before taking anything
    events("second")
    assert len(ctx.tasks) == 2
    ctx.finish(1)
    assert ctx.store.logged == ["first", "second"]
