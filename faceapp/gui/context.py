"""The app's shared state: settings, the store, the face engine and service, the camera.

:class:`AppContext` opens the database and loads the models in worker threads, so the window
shows at once; pages listen to its signals (``store_ready``, ``engine_ready``, ...).
On a database server (PostgreSQL) the store is opened as a door's, with its offline cache
(:func:`faceapp.store.offline.open_door_store`, as the headless door): while the server does
not answer the door decides from its local copy of the gallery and queues its decisions
(``offline_changed`` says when that starts and ends); started during an outage the app runs on
that copy, or fails to open the store (``store_failed``) when this door has none.
:class:`CameraController` runs the live pipeline (camera -> newest frame -> detect, align,
embed, match) in a worker and sends one :class:`LiveFrame` per processed frame.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from faceapp.config import Settings
from faceapp.errors import FaceAppError
from faceapp.gui.widgets import to_qimage
from faceapp.gui.workers import Worker, WorkerPool

log = logging.getLogger(__name__)

OFFLINE_CHECK_MS = 1000  # how often the context looks whether the database server answers (no I/O)


def error_text(exc: BaseException) -> str:
    """One line for the person at the keyboard, in the screen's words (no command-line
    flags, no "templates": :func:`faceapp.gui.messages.screen_words`)."""
    from faceapp.gui.messages import screen_words

    if isinstance(exc, FaceAppError):
        return screen_words(str(exc))
    return f"unexpected error: {type(exc).__name__}: {exc}"


class _Relay(QObject):
    """Lives in the GUI thread and calls plain callbacks there for a worker's signals
    (a lambda connected straight to a worker's signal would run in the worker's thread)."""

    def __init__(self, owner: AppContext, worker: Worker, on_result, on_error, on_yield, on_finished) -> None:
        super().__init__()
        self._owner, self._worker = owner, worker
        self._cbs = (on_result, on_error, on_yield, on_finished)
        worker.returned.connect(self._returned)
        worker.errored.connect(self._errored)
        worker.yielded.connect(self._yielded)
        worker.finished.connect(self._finished)

    @Slot(object)
    def _returned(self, value: Any) -> None:
        if self._cbs[0]:
            self._cbs[0](value)

    @Slot(object)
    def _errored(self, exc: BaseException) -> None:
        if self._cbs[1]:
            self._cbs[1](exc)
        else:
            log.error("background task failed: %s", error_text(exc))

    @Slot(object)
    def _yielded(self, value: Any) -> None:
        if self._cbs[2]:
            self._cbs[2](value)

    @Slot()
    def _finished(self) -> None:
        if self._cbs[3]:
            self._cbs[3]()
        self._owner._relays.discard(self)


@dataclass(frozen=True)
class CameraOpened:
    name: str
    live: bool  # a webcam (not a file)


@dataclass(frozen=True, eq=False)
class LiveFrame:
    """One processed frame and its picture, ready for the GUI thread."""

    result: Any  # faceapp.pipeline.FrameResult
    image: QImage
    produced: float = 0.0  # time.monotonic() when the worker finished it
    # faceapp.landmarks.analyze.FaceLandmarks per face of ``result.faces`` (68 points, eye
    # aspect ratio, head pose), predicted in the worker when a page needs them; else None
    landmarks: tuple[Any, ...] | None = None

    @property
    def inference_ms(self) -> float:
        t = self.result.timings
        return sum(t.get(k, 0.0) for k in ("detect", "align", "embed", "match", "landmarks"))


def stream_frames(
    spec: str, pipeline, *, is_cancelled: Callable[[], bool], landmarks: Callable[[], Any] | None = None
) -> Iterator[Any]:
    """The worker's generator: open the source (CameraUnavailable is raised to the GUI),
    keep only the newest frame, process it and hand over the result with its picture.
    ``landmarks()`` is asked before each frame for a LandmarkAnalyzer (or None when no page
    needs the 68 points now); its points travel with the frame, predicted here, off the GUI thread."""
    from faceapp.capture.sources import LatestFrame, open_source

    source = open_source(spec, realtime=True)
    yield CameraOpened(source.name, source.live)
    latest = LatestFrame(source)
    try:
        for result in pipeline.run(latest.frames(is_cancelled), is_cancelled):
            analyzer = landmarks() if landmarks is not None else None
            faces = None
            if analyzer is not None:
                t0 = time.perf_counter()
                faces = analyzer.analyze_frame(result)
                result.timings["landmarks"] = (time.perf_counter() - t0) * 1000.0
            yield LiveFrame(result, to_qimage(result.frame), time.monotonic(), faces)
    finally:
        latest.stop()


class CameraController(QObject):
    """Starts, restarts and stops the live stream; reports frames, failures and the end."""

    opened = Signal(object)  # CameraOpened
    frame = Signal(object)  # LiveFrame
    failed = Signal(str)  # the camera could not be opened or stopped delivering
    ended = Signal(str)  # a video file or image folder came to its end
    stopped = Signal()

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.ctx = ctx
        self._worker: Worker | None = None
        self._spec: str | None = None
        self.state = "stopped"  # stopped | starting | running | failed | ended
        self.error = ""
        self.source_name = ""
        self.last: LiveFrame | None = None
        self.fps = 0.0  # processed frames per second, over the last few frames
        self._times: deque[float] = deque(maxlen=12)

    @property
    def running(self) -> bool:
        return self._worker is not None and self.state in ("starting", "running")

    def start(self, spec: str | None = None) -> None:
        """Start the stream from ``spec`` (default: the settings' camera); a running stream of
        the same source keeps running."""
        spec = str(spec if spec is not None else self.ctx.settings.camera)
        if self.running and spec == self._spec:
            return
        if self.ctx.service is None:
            raise RuntimeError("the camera needs the face models; wait for engine_ready")
        self.stop(wait=True)
        from faceapp.pipeline import FacePipeline

        pipeline = FacePipeline(self.ctx.engine, self.ctx.service.gallery, top_k=self.ctx.settings.top_k)
        self._spec = spec
        self.state, self.error, self.last, self.fps = "starting", "", None, 0.0
        self._times.clear()
        worker = Worker(stream_frames, spec, pipeline, cancellable=True, name="camera",
                        landmarks=self.ctx.landmark_analyzer_if_wanted)
        self._worker = worker
        self.ctx.run(
            worker,
            on_yield=lambda v, w=worker: self._on_value(w, v),
            on_error=lambda e, w=worker: self._on_error(w, e),
            on_finished=lambda w=worker: self._on_finished(w),
        )

    def retry(self) -> None:
        spec = self._spec
        self.stop(wait=True)
        self.start(spec)

    def stop(self, *, wait: bool = False) -> None:
        """Ask the stream to stop; with ``wait`` block until its thread has ended."""
        worker, self._worker = self._worker, None
        if worker is not None:
            if wait:
                self.ctx.pool.stop(worker)
            else:
                worker.quit()
        if self.state != "stopped":
            self.state = "stopped"
            self.stopped.emit()

    # -- from the worker (GUI thread) -------------------------------------------------------
    def _on_value(self, worker: Worker, value: Any) -> None:
        if worker is not self._worker:
            return  # a stream being stopped
        if isinstance(value, CameraOpened):
            self.source_name = value.name
            self.state = "running"
            self.opened.emit(value)
            return
        # Timed where the frames are made: the GUI may receive several at once after a pause.
        self._times.append(value.produced)
        if len(self._times) >= 2 and self._times[-1] > self._times[0]:
            self.fps = (len(self._times) - 1) / (self._times[-1] - self._times[0])
        self.last = value
        self.frame.emit(value)

    def _on_error(self, worker: Worker, exc: BaseException) -> None:
        if worker is not self._worker:
            return
        self.state, self.error = "failed", error_text(exc)
        self._worker = None
        self.failed.emit(self.error)

    def _on_finished(self, worker: Worker) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        if self.state in ("starting", "running") and not worker.cancelled:
            self.state = "ended"
            self.ended.emit(f"{self.source_name or self._spec} has ended")


class AppContext(QObject):
    store_ready = Signal()
    store_failed = Signal(str)
    engine_ready = Signal()
    engine_failed = Signal(str)
    people_changed = Signal()  # someone was enrolled, renamed, removed or imported
    events_changed = Signal()  # a decision was logged
    settings_changed = Signal(object)  # the new Settings
    status = Signal(str)
    offline_changed = Signal(bool)  # True: the database server does not answer, the door runs on its copy

    def __init__(
        self,
        settings: Settings,
        *,
        store=None,
        engine=None,
        settings_file: Path | None = None,
        torch_threads: int | None = None,
        analyzer=None,
    ) -> None:
        super().__init__()
        self._analyzer = analyzer  # a LandmarkAnalyzer to share (tests); else the service makes one
        self.torch_threads = torch_threads
        self.settings = settings
        self.settings_file = settings_file
        self.store = store
        self.engine = engine
        self.service = None
        self._owns_store = store is None
        self.offline = None  # the door's faceapp.store.offline.OfflineCache (a database server only)
        self.snapshot_taken_at = None  # when the copy the door decides from while offline was taken
        self._was_offline = False
        self._store_announced = False  # store_ready was emitted (started offline: once the server answers)
        self._offline_timer = QTimer(self)
        self._offline_timer.setInterval(OFFLINE_CHECK_MS)
        self._offline_timer.timeout.connect(self._check_offline)
        self.store_error = ""
        self.engine_error = ""
        self.pool = WorkerPool(self)
        self._relays: set[_Relay] = set()
        self.camera = CameraController(self)
        self.door_watching = False  # the door page is on screen (its liveness challenge needs landmarks)
        self._reembedding = False  # templates of another model are being re-encoded (start-up)
        self.reembedded = 0  # how many templates were re-encoded at start-up
        self.reembed_error = ""
        self._closed = False

    # -- start-up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open the database and load the models in the background (what was not passed in)."""
        if self.store is None:
            self.status.emit("Opening the database...")
            self.run(Worker(_open_store, self.settings.resolved_db_url, name="store"),
                     on_result=self._store_opened, on_error=self._store_failed)
        else:
            self._store_opened(self.store)
        if self.engine is None:
            self.status.emit("Loading face models...")
            self.run(Worker(_load_engine, self.settings, self.torch_threads, name="models"),
                     on_result=self._engine_loaded, on_error=self._engine_failed)
        else:
            self._engine_loaded(self.engine)

    def _store_opened(self, store) -> None:
        from faceapp.store.offline import DoorStore

        door = store if isinstance(store, DoorStore) else DoorStore(store)
        self.store, self.offline = door.store, door.offline
        if door.offline is not None:
            self._offline_timer.start()
        if door.unreachable:  # the pages' data comes when the server answers (store_ready then)
            self.snapshot_taken_at = door.snapshot_taken_at
            self._check_offline()
            self.status.emit(door.notice[:1].upper() + door.notice[1:])
        else:
            self._store_announced = True
            self.store_ready.emit()
        self._maybe_service()

    @property
    def server_unreachable(self) -> bool:
        """The door's database server does not answer: it decides from its local copy of the
        gallery and queues its decisions (reads attributes only: no database access)."""
        if self.offline is None or self.store is None:
            return False
        if not getattr(self.store, "connected", True):
            return True
        return self.service is not None and self.service.offline_since is not None

    def _check_offline(self) -> None:
        offline = self.server_unreachable
        if offline != self._was_offline:
            self._was_offline = offline
            if offline:
                try:
                    self.snapshot_taken_at = self.offline.snapshot_taken_at
                except Exception as exc:  # the local file: the banner goes without the time
                    log.warning("the door's copy of the gallery cannot be read: %s", exc)
                log.warning("database server unreachable: the door decides from its local copy")
            else:
                log.warning("database server reachable again")
                self.status.emit("The database server answers again")
            self.offline_changed.emit(offline)
        if not offline and not self._store_announced and getattr(self.store, "connected", True):
            self._store_announced = True
            self.store_ready.emit()

    def _store_failed(self, exc: BaseException) -> None:
        self.store_error = error_text(exc)
        self.store_failed.emit(self.store_error)
        self.status.emit(f"Database problem: {self.store_error}")

    def _engine_loaded(self, engine) -> None:
        self.engine = engine
        self._maybe_service()

    def _engine_failed(self, exc: BaseException) -> None:
        self.engine_error = error_text(exc)
        self.engine_failed.emit(self.engine_error)
        self.status.emit(f"Face models could not be loaded: {self.engine_error}")

    def _maybe_service(self) -> None:
        if self.store is None or self.engine is None or self.service is not None or self._reembedding:
            return
        from faceapp.services import FaceService

        service = FaceService(self.settings, store=self.store, engine=self.engine, analyzer=self._analyzer,
                              offline=self.offline)
        try:
            others = {m: n for m, n in self.store.model_ids().items() if m != self.engine.model_id}
        except Exception as exc:  # the database could not be read: say so, the pages show it too
            log.warning("cannot count the templates by model: %s", exc)
            others = {}
        if not others:
            self._service_ready(service)
            return
        # The model was changed (settings): re-encode the enrolled faces from their stored photos
        # before anything is decided, so no one is judged against another model's templates.
        total = sum(others.values())
        self._reembedding = True
        self.status.emit(f"Re-encoding {total} enrolled face(s) for model {self.engine.model_id}...")

        model_id = self.engine.model_id

        def progress(i: int, k: int) -> None:  # worker thread: the signal is queued to the GUI
            self.status.emit(f"Re-encoding enrolled faces for model {model_id}: {i} of {k}")

        def work() -> int:
            return service.reembed(progress=progress)

        def finished(n: int) -> None:
            self._reembedding = False
            self.reembedded = n
            log.info("re-encoded %d template(s) for model %s", n, self.engine.model_id)
            self._service_ready(service, note=f"{n} enrolled face(s) re-encoded for this model. ")
            self.people_changed.emit()

        def failed(exc: BaseException) -> None:
            self._reembedding = False
            self.reembed_error = error_text(exc)
            self._service_ready(service, note=f"Enrolled faces of other models could not be re-encoded: {self.reembed_error} ")

        self.task(work, name="reembed", on_result=finished, on_error=failed)

    def _service_ready(self, service, note: str = "") -> None:
        self.service = service
        self.status.emit(f"{note}Ready: model {self.engine.model_id}, threshold {self.engine.threshold:.3f}")
        self._warm_landmarks()
        self.engine_ready.emit()

    @property
    def ready(self) -> bool:
        return self.service is not None

    @property
    def analyzer(self):
        """The landmark analyzer (68 points, eyes, head pose), once the service exists."""
        return self.service.analyzer if self.service is not None else None

    @property
    def wants_landmarks(self) -> bool:
        """The camera frames need their 68 landmarks now: they are drawn (show_landmarks), or
        the door page is on screen with its liveness challenge (liveness)."""
        return bool(self.settings.show_landmarks or (self.settings.liveness and self.door_watching))

    def landmark_analyzer_if_wanted(self):
        """Asked by the camera worker before each frame (from its thread; reads only)."""
        return self.analyzer if self.wants_landmarks else None

    def _warm_landmarks(self) -> None:
        """Load the landmark CNN in the background as soon as a setting will need it."""
        if self.analyzer is not None and (self.settings.show_landmarks or self.settings.liveness):
            self.task(self.analyzer.warm_up, name="landmarks",
                      on_error=lambda e: self.status.emit(f"Landmark model could not be loaded: {error_text(e)}"))

    # -- tasks ------------------------------------------------------------------------------
    def run(
        self,
        worker: Worker,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_yield: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Worker:
        """Run ``worker`` on its own thread; the callbacks run in the GUI thread."""
        relay = _Relay(self, worker, on_result, on_error, on_yield, on_finished)
        self._relays.add(relay)
        return self.pool.start(worker)

    def task(self, func: Callable[..., Any], *args: Any, on_result=None, on_error=None, name: str = "", **kwargs: Any) -> Worker:
        return self.run(Worker(func, *args, name=name, **kwargs), on_result=on_result, on_error=on_error)

    # -- changes ----------------------------------------------------------------------------
    def apply_settings(self, settings: Settings) -> None:
        """Take new settings: the threshold and door values apply now, a changed camera is
        stopped (and started again by the window); database, device and model changes need a
        restart of the app."""
        old, self.settings = self.settings, settings
        if self.engine is not None:
            import dataclasses

            # the new threshold is for the new settings' model: an engine still running another
            # model (a model change applies at the next start) keeps its own calibrated value
            self.engine.settings = dataclasses.replace(self.engine.settings, threshold=settings.threshold,
                                                       threshold_model=settings.threshold_model or settings.model)
        if self.service is not None:
            self.service.settings = settings
            self.service.analyzer.set_settings(settings)
            if settings.show_landmarks != old.show_landmarks or settings.liveness != old.liveness:
                self._warm_landmarks()
        if str(old.camera) != str(settings.camera):
            self.camera.stop(wait=True)  # the window starts the new one where a page needs it
        self.settings_changed.emit(settings)

    # -- shutdown ---------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop every worker cooperatively (waiting for each) and close the database."""
        if self._closed:
            return True
        self._closed = True
        self._offline_timer.stop()
        self.camera.stop()
        ok = self.pool.stop_all(timeout_ms)
        if not ok:  # e.g. the models still loading: that cannot be interrupted, but it ends
            log.warning("waiting for background work to finish before closing")
            ok = self.pool.stop_all(120_000)
        if self._owns_store and self.store is not None:
            self.store.close()
        if self._owns_store and self.offline is not None:
            self.offline.close()
        return ok


def _open_store(url: str):
    """The store at ``url``, as a door's (faceapp.store.offline.DoorStore): on a database server
    with its offline cache."""
    from faceapp.store.offline import open_door_store

    return open_door_store(url)


def _load_engine(settings: Settings, threads: int | None = None):
    from faceapp.pipeline import FaceEngine

    t0 = time.perf_counter()
    if threads:
        from faceapp.runtime import set_num_threads

        set_num_threads(threads)
    engine = FaceEngine(settings)
    engine.warm_up()
    log.info("face models loaded in %.1f s", time.perf_counter() - t0)
    return engine
