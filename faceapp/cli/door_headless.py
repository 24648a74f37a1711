"""``faceapp door --headless``: the door without a screen, for a service (systemd) or a script.

The same :class:`faceapp.door.DoorMachine`, :class:`faceapp.door_log.DoorRecorder` and
:class:`faceapp.outputs.DoorOutputs` as the kiosk, without Qt: frames from ``--camera`` go
through the face pipeline into the machine; each decision is committed to the access log, then
drives the outputs (lock relay, command, webhook) with its event id, and is printed as ONE JSON
line on stdout (the decision, the lock's state, each output's result). Logs go to stderr.

- ``--mode recognize`` (default: the settings' door mode, recognize) starts an attempt when a
  face appears; ``--mode verify --claim NAME`` claims NAME whenever a face appears (a door for
  one person, or a badge reader that names who stands there).
- A video file or an image folder decides on VIDEO time (frame index / frame rate), not wall
  time, so a file gives the same decisions however fast the machine is; ``--every N`` uses
  every N-th frame (the others still advance the clock). ``--until-end`` stops at the file's
  end (a missing file is exit 12); without it the source is reopened, like a camera.
- The re-entry cooldown (:class:`faceapp.door_cooldown.DoorCooldown`, ``door_cooldown_s``,
  ``door_attempt_window_s``) applies as at the kiosk: a repeat grant is a line with
  ``"admission": "repeat_grant"``, ``"granted": false``, no event and no output; a grant whose
  lock was unreachable starts no cooldown. Quiet denials no later denial reports are logged
  as a ``door_quiet_denials`` event (the window closed, and when the door stops).
- An attempt that had agreeing frames and ended without its decision (the face left, e.g. a
  photo lowered before the anti-spoofing verdict; the stream ended; a timeout the cooldown holds
  back) is one ``door_abandoned`` event (``DoorState.abandoned``) and a warning on stderr; no
  JSON line (nothing was decided) and nobody let in.
- At start (:mod:`faceapp.door_checks`): settings weaker than their defaults are one warning
  line and one ``door_settings`` event; recognize mode on a model without a calibration curve,
  with more than one person enrolled (also found on a frame later), is refused (ConfigError,
  exit 11).
- A camera that fails, or ends, is reopened with a backoff (1 s, doubling, at most 30 s); the
  door never stops by itself. SIGTERM and SIGINT stop it cleanly (exit 0): the lock is locked,
  queued webhooks get a few seconds, pending events are written.
- The lock relay is locked first (its relock bytes sent before the store opens, the claim is
  checked or a model loads) and again when the door stops, whatever failed in between.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from faceapp.cli.exit_codes import Exit
from faceapp.errors import CameraUnavailable

log = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
FLUSH_EVERY_S = 2.0  # how often decisions that could not be logged are tried again
CLOSE_TIMEOUT_S = 5.0  # what a stopping door gives the queued webhooks


# -- the command line --------------------------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 1 or more")
    return value


def add_arguments(sp: argparse.ArgumentParser) -> None:
    """The ``door`` subcommand's headless flags (the kiosk's --camera/--mode/--windowed are shared)."""
    sp.add_argument("--headless", action="store_true",
                    help="run the door without a screen: one JSON line per decision on stdout (a service)")
    sp.add_argument("--claim", metavar="NAME", help="headless verify mode: the person every visitor is checked against")
    sp.add_argument("--until-end", action="store_true",
                    help="headless, a video file or image folder: stop at its end (default: reopen it, like a camera)")
    sp.add_argument("--every", type=_positive, default=1, metavar="N",
                    help="headless, a video file or image folder: use every N-th frame (default 1)")
    sp.set_defaults(func=cmd_door)


def _usage(message: str) -> int:
    print(f"faceapp door: {message} (see faceapp door --help)", file=sys.stderr)
    return int(Exit.USAGE)


def cmd_door(args: argparse.Namespace) -> int:
    """``faceapp door``: the kiosk (Qt), or with ``--headless`` the door without a screen."""
    if not args.headless:
        for flag, given in (("--claim", args.claim), ("--until-end", args.until_end), ("--every", args.every != 1)):
            if given:
                return _usage(f"{flag} is for the headless door (add --headless)")
        from faceapp.gui.app import cmd_door as kiosk

        return kiosk(args)
    if args.windowed:
        return _usage("--windowed is for the door screen, not --headless")
    mode = args.mode or ("verify" if args.claim else "recognize")
    if mode == "verify" and not (args.claim or "").strip():
        return _usage("--mode verify needs --claim NAME when headless")
    if mode == "recognize" and args.claim:
        return _usage("--claim is for --mode verify")
    from faceapp.cli.main import _settings

    settings = _settings(args)
    return run_headless(settings, args.camera or settings.camera, mode=mode, claim=args.claim,
                        until_end=args.until_end, every=args.every)


# -- the door ---------------------------------------------------------------------------------------
class VideoClock:
    """The door's clock: a file source's video time (set per frame), or the wall clock."""

    def __init__(self, video: bool) -> None:
        self.video = video
        self.now = 0.0

    def __call__(self) -> float:
        return self.now if self.video else time.monotonic()


def run_headless(
    settings,
    camera: str,
    *,
    mode: str = "recognize",
    claim: str | None = None,
    until_end: bool = False,
    every: int = 1,
    out: IO[str] | None = None,
    stop: threading.Event | None = None,
    service=None,
    on_decision: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run the door on ``camera`` until ``stop`` is set (SIGTERM / SIGINT set it when this runs
    in the main thread) or, with ``until_end``, the file source ends. ``service``: a
    :class:`faceapp.services.FaceService` to use (default: one from ``settings``, closed at the
    end). Each decision's JSON line goes to ``out`` (stdout) and to ``on_decision``. Returns the
    exit code (0); raises CameraUnavailable for a file source that cannot be opened with ``until_end``."""
    from faceapp.door import DoorMachine, DoorMode, liveness_factory
    from faceapp.door_checks import check_recognize, report_weaker_settings
    from faceapp.door_checks import uncalibrated as no_curve
    from faceapp.door_cooldown import DoorCooldown
    from faceapp.door_log import DoorRecorder
    from faceapp.outputs import DoorOutputs
    from faceapp.pipeline import FacePipeline

    out = out if out is not None else sys.stdout
    stop = stop if stop is not None else threading.Event()
    own_service = service is None
    offline = None
    recorder = None
    door = None
    writers: list[threading.Thread] = []
    # the lock first, before the store, the claim and the models: a door that crashed while open
    # and is restarted (systemd) locks even when its start fails later (the database unreachable,
    # the claimed person removed, corrupt weights); the finally relocks whatever failed
    outputs = DoorOutputs.from_settings(settings)
    outputs.start()
    old_handlers = {}
    try:
        if own_service:
            from faceapp.services import FaceService

            service, offline = _door_service(settings, FaceService)
        outputs.attach_log(lambda *a, **k: service.store.log_event(*a, **k))
        old_handlers = _install_signals(stop)
        door_mode = DoorMode(mode)
        if door_mode is DoorMode.VERIFY:
            claim = service.store.get_person(claim).name  # UnknownPerson (exit 6) before the camera opens
        video = not str(camera).strip().isdigit()  # a file or a folder: decide on video time
        clock = VideoClock(video)
        service.engine.warm_up()
        machine = DoorMachine.from_settings(
            settings, door_mode, threshold=service.threshold,
            spec=service.engine.spec,  # the running model's calibration curve
            distance_to=lambda name, emb: service.gallery().distance_to(name, emb),
            liveness=liveness_factory(settings, analyzer=service.analyzer, clock=clock),
            clock=clock,
        )
        # one warning line and one door_settings event for settings weaker than their defaults
        # (its event is written from a thread: a server that does not answer must not hold up the start)
        report_weaker_settings(settings, spec=service.engine.spec, threshold=service.threshold,
                               # (looked up in the thread: a store whose server is down connects on first use)
                               log_event=lambda kind, **kw: service.store.log_event(kind, **kw),
                               door="the headless door",
                               task=lambda fn: writers.append(_started(fn, "door-settings-log")))
        uncalibrated = door_mode is DoorMode.RECOGNIZE and no_curve(machine.recognize_rule)
        if uncalibrated:  # fail secure: no 1:1 threshold for a gallery of several people (ConfigError, exit 11)
            check_recognize(machine.recognize_rule, len(service.gallery().people), model=_model_id(service))
        pipeline = FacePipeline(service.engine, service.gallery, top_k=settings.top_k)
        recorder = DoorRecorder(service.store, offline=offline if offline is not None else service.offline)
        door = _HeadlessDoor(machine, pipeline, recorder, outputs, clock, claim=claim, out=out,
                             on_decision=on_decision, analyzer=service.analyzer,
                             cooldown=DoorCooldown.from_settings(settings, clock=clock),
                             uncalibrated=_model_id(service) if uncalibrated else None)
        log.info("headless door on %s: %s mode%s", camera, door_mode.value, f" for {claim}" if claim else "")
        door.run(str(camera), video=video, until_end=until_end, every=every, stop=stop)
        return int(Exit.OK)
    finally:
        _restore_signals(old_handlers)
        outputs.close(CLOSE_TIMEOUT_S)  # sends the relock bytes, open or not
        if door is not None:
            door.finish()  # the quiet denials still held back are logged
        for thread in writers:
            thread.join(CLOSE_TIMEOUT_S)
        if recorder is not None:
            recorder.flush_pending()
            recorder.close()
        if own_service and service is not None:
            service.close()
            if offline is not None:
                offline.close()


def _started(fn: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=fn, name=name, daemon=True)
    thread.start()
    return thread


def _model_id(service) -> str:
    return str(getattr(service.engine.spec, "model_id", "") or "")


def _door_service(settings, service_class):
    """The door's FaceService and its offline cache (None off a database server), from
    :func:`faceapp.store.offline.open_door_store`: started during an outage it says so and
    runs on its copy of the gallery, or refuses (StoreError, exit 9) when it has none."""
    from faceapp.store.offline import open_door_store

    door = open_door_store(settings.resolved_db_url)
    if door.notice:
        print(f"faceapp: {door.notice}", file=sys.stderr)
    return service_class(settings, store=door.store, offline=door.offline), door.offline


class _HeadlessDoor:
    def __init__(self, machine, pipeline, recorder, outputs, clock: VideoClock, *, claim, out, on_decision, analyzer,
                 cooldown, uncalibrated: str | None = None):
        self.cooldown = cooldown
        # recognize mode on a model without a calibration curve (its id): refused as soon as a
        # frame was matched against more than one person (someone enrolled while the door runs)
        self.uncalibrated = uncalibrated
        self.machine = machine
        self.pipeline = pipeline
        self.recorder = recorder
        self.outputs = outputs
        self.clock = clock
        self.claim = claim
        self.out = out
        self.on_decision = on_decision
        self.analyzer = analyzer
        self.decisions = 0
        self._flushed_at = time.monotonic()

    def run(self, camera: str, *, video: bool, until_end: bool, every: int, stop: threading.Event) -> None:
        from faceapp.capture.sources import open_source

        backoff, base, index = BACKOFF_START_S, 0.0, 0
        while not stop.is_set():
            try:
                source = open_source(camera, realtime=video and not until_end)
            except CameraUnavailable as exc:
                if until_end:
                    raise
                log.warning("camera %s unavailable (%s): trying again in %g s", camera, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            end = base
            try:
                for t, frame in self._frames(source, video=video, base=base, every=every, stop=stop):
                    backoff = BACKOFF_START_S
                    end = t
                    self.step(frame, index, t)
                    index += 1
                reason = "ended"
            except CameraUnavailable as exc:
                reason = f"failed ({exc})"
            finally:
                source.close()
            if video:
                base = end + 1.0 / (source.fps or 25.0)  # video time goes on across a reopen
            self.cancel(f"camera {reason}")  # an attempt is not carried over to another stream
            if stop.is_set() or (video and until_end):
                return
            log.warning("camera %s %s: reopening in %g s", camera, reason, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _frames(self, source, *, video: bool, base: float, every: int, stop: threading.Event) -> Iterator[tuple[float, Any]]:
        """(time, frame): a file's every N-th frame on video time, or a camera's newest frame."""
        if not video:
            from faceapp.capture.sources import LatestFrame

            for frame in LatestFrame(source).frames(stop.is_set):
                yield time.monotonic(), frame
            return
        fps = source.fps or 25.0
        i = 0
        while not stop.is_set():
            frame = source.read()
            if frame is None:
                return
            if i % every == 0:
                yield base + i / fps, frame
            i += 1

    def step(self, frame, index: int, t: float) -> None:
        """One frame through the pipeline and the machine; a decision is recorded, drives the
        outputs and is printed."""
        from faceapp.door import DoorMode, DoorPhase

        self.clock.now = t
        result = self.pipeline.process(frame, index)
        if self.uncalibrated is not None and (result.gallery_size or 0) > 1:
            from faceapp.door_checks import check_recognize

            check_recognize(self.machine.recognize_rule, result.gallery_size, model=self.uncalibrated)
        machine = self.machine
        state = machine.tick()
        if state.decided_now and state.outcome is not None:  # the time limit ran out before this frame
            self._decided(state.outcome, t, abandoned=state.abandoned)
        if machine.mode is DoorMode.VERIFY and machine.state.phase is DoorPhase.WAITING and result.faces:
            machine.claim(self.claim)  # the visitor "says" the name when they show up
        landmarks = None
        if machine.needs_landmarks and result.faces:
            landmarks = self.analyzer.analyze_frame(result)
        state = machine.feed(result, landmarks)
        if state.decided_now and state.outcome is not None:
            self._decided(state.outcome, t, abandoned=state.abandoned)
        elif state.abandoned is not None:  # the face left before the decision (a photo lowered)
            self._log_abandoned(state.abandoned)
        self._report_quiet()
        if time.monotonic() - self._flushed_at > FLUSH_EVERY_S and (
                self.recorder.pending or self.recorder.offline is not None):
            self._flushed_at = time.monotonic()
            self.recorder.flush_pending()

    def _report_quiet(self, *, final: bool = False) -> None:
        """Log the count of quiet denials (the cooldown's) that no later denial will report:
        its window closed, it is due, or the door stops (``final``)."""
        from faceapp.door_cooldown import QUIET_EVENT

        report = self.cooldown.quiet_report(final=final)
        if report is None:
            return
        try:
            self.recorder.store.log_event(QUIET_EVENT, detail=report.detail)
        except Exception as exc:  # kept for the next report (the stop's is the last chance)
            self.cooldown.unreport(report)
            log.error("quiet door denials not logged yet (%s: %s): %s", type(exc).__name__, exc, report.detail)

    def cancel(self, why: str) -> None:
        """Drop the running attempt (the stream ended or failed); one with agreeing frames is logged."""
        abandoned = self.machine.cancel(why).abandoned
        if abandoned is not None:
            self._log_abandoned(abandoned)

    def _log_abandoned(self, abandoned) -> None:
        """An attempt with a reading that ended without its decision: one ``door_abandoned``
        event (nobody named as let in; the reading is in the detail)."""
        log.warning("door attempt without a decision: %s", abandoned.detail)
        try:
            self.recorder.store.log_event("door_abandoned", detail=abandoned.detail)
        except Exception as exc:
            log.error("abandoned door attempt not logged (%s: %s): %s", type(exc).__name__, exc, abandoned.detail)

    def finish(self) -> None:
        """The door stops: what the cooldown still holds back is logged."""
        self._report_quiet(final=True)

    def _decided(self, outcome, t: float, *, abandoned=None) -> None:
        verdict = self.cooldown.admit(outcome)
        if abandoned is not None and not verdict.log and not verdict.repeat:
            # a timeout after a reading that the cooldown holds back: its reading is still logged
            self._log_abandoned(abandoned)
        if verdict.log:
            record = self.recorder.record(verdict.outcome)
            self.machine.settle(record.outcome)
            dispatch = self.outputs.dispatch(record)
            # only a grant that opened the lock (or a door without one) starts the cooldown
            self.cooldown.settle(verdict, record, dispatch)
            line = dispatch.as_dict()
            line["logged"] = record.committed
            line["queued"] = record.queued_uid is not None  # committed to the offline outbox instead
            line["log_ms"] = round(1000 * record.elapsed_s, 1)  # how long the decision waited for its record
        else:  # the cooldown: a repeat grant (welcome, the lock stays shut) or a stranger who stays
            line = _unlogged_line(verdict, door=self.outputs.door_id)
        line["admission"] = verdict.admission.value
        line["video_s"] = round(t, 3) if self.clock.video else None
        self.decisions += 1
        self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.out.flush()
        if self.on_decision is not None:
            self.on_decision(line)


def _unlogged_line(verdict, *, door: str) -> dict[str, Any]:
    """The JSON line of a decision the cooldown keeps out of the log: no event, no output,
    ``granted`` false (the lock was not opened); ``name`` is who was welcomed again."""
    from datetime import UTC, datetime

    o = verdict.outcome
    return {
        "decision": o.decision.value, "granted": False, "mode": o.mode.value,
        "name": o.name if verdict.repeat else None, "claimed": o.claimed,
        "distance": None if o.distance is None else round(float(o.distance), 6),
        "threshold": round(float(o.threshold), 6), "door": door, "time": datetime.now(UTC).isoformat(),
        "event_id": None, "frames": o.frames, "detail": o.detail, "lock": "none", "outputs": [],
        "webhook_queued": False, "logged": False,
        "repeat_of_s": None if verdict.repeat_of_s is None else round(verdict.repeat_of_s, 3),
    }


def _install_signals(stop: threading.Event) -> dict:
    """SIGTERM / SIGINT set ``stop`` (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        old[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    return old


def _restore_signals(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)
