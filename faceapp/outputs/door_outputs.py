"""The door's outputs together: one :meth:`DoorOutputs.dispatch` per recorded decision.

Fail secure, by construction: only a decision whose event was committed as a grant
(:attr:`faceapp.door_log.DoorRecord.granted`) unlocks; an output's failure is reported and
logged, and never changes the decision. The lock outputs (serial relay, command on a grant)
run in the caller's thread, each bounded by its own time limit (the GUI calls from a worker,
the headless door from its loop, where frames do not count while a decision is shown), so
their result can be shown ("lock unreachable"); the webhook is posted from its own thread.

Events (kind, when): ``door_command`` the command's exit status, every run; ``door_lock_failed``
a grant whose lock did not open, or a relock that failed (the door may stay open; the serial
relock is retried until it gets through); ``door_lock_relocked`` that retried relock getting through;
``door_webhook_failed`` a notice not delivered. They are written in the background by one
thread (``log_event`` is :meth:`faceapp.store.repository.Store.log_event`), best effort.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faceapp.door_log import DoorRecord
from faceapp.outputs.base import LockState, OutputResult, decision_payload
from faceapp.outputs.command import CommandOutput
from faceapp.outputs.serial_lock import SerialLock
from faceapp.outputs.webhook import WebhookOutput

log = logging.getLogger(__name__)

EVENT_QUEUE = 200
_STOP = object()


@dataclass(frozen=True)
class Dispatch:
    """What the outputs made of one recorded decision: ``lock`` (opened, unreachable, or none),
    the synchronous ``results`` (serial, command), ``payload`` (what was sent), and
    ``webhook_queued``."""

    record: DoorRecord
    payload: dict[str, Any]
    lock: LockState = LockState.NONE
    results: tuple[OutputResult, ...] = ()
    webhook_queued: bool = False

    @property
    def lock_unreachable(self) -> bool:
        return self.lock is LockState.UNREACHABLE

    def as_dict(self) -> dict[str, Any]:
        """The decision, the lock and each output's result (the headless door's JSON line)."""
        return {**self.payload, "lock": self.lock.value, "outputs": [r.as_dict() for r in self.results],
                "webhook_queued": self.webhook_queued}


class DoorOutputs:
    """The configured outputs (any of them may be None). ``log_event(kind, detail=...)`` writes
    the outputs' events; None logs them with :mod:`logging` only."""

    def __init__(
        self,
        *,
        door_id: str = "",
        serial: SerialLock | None = None,
        command: CommandOutput | None = None,
        webhook: WebhookOutput | None = None,
        log_event: Callable[..., Any] | None = None,
    ) -> None:
        self.door_id = door_id or socket.gethostname()
        self.serial = serial
        self.command = command
        self.webhook = webhook
        self.log_event = log_event
        if serial is not None:
            serial.on_result = self._relock_done
        if webhook is not None:
            webhook.on_result = self._webhook_done
        self._events: queue.Queue = queue.Queue(maxsize=EVENT_QUEUE)
        self._event_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._unlogged_start: str | None = None  # a failed lock at start, before a log was attached

    @classmethod
    def from_settings(cls, settings, *, log_event: Callable[..., Any] | None = None,
                      webhook_backoff_s: float = 1.0) -> DoorOutputs:
        """The outputs the settings name (``door_serial``, ``door_command``, ``door_webhook_url``)."""
        from faceapp.config import hex_bytes

        serial = None
        if settings.door_serial.strip():
            serial = SerialLock(settings.door_serial.strip(), unlock=hex_bytes(settings.door_serial_unlock),
                                relock=hex_bytes(settings.door_serial_relock), unlock_s=settings.door_unlock_s,
                                baud=settings.door_serial_baud)
        command = None
        if settings.door_command.strip():
            command = CommandOutput(settings.door_command, on=settings.door_command_on,
                                    timeout_s=settings.door_command_timeout_s)
        webhook = None
        if settings.door_webhook_url.strip():
            webhook = WebhookOutput(settings.door_webhook_url.strip(), secret=settings.door_webhook_secret,
                                    timeout_s=settings.door_webhook_timeout_s, retries=settings.door_webhook_retries,
                                    backoff_s=webhook_backoff_s)
        return cls(door_id=settings.door_id.strip(), serial=serial, command=command, webhook=webhook,
                   log_event=log_event)

    @property
    def configured(self) -> bool:
        return any(o is not None for o in (self.serial, self.command, self.webhook))

    @property
    def has_lock(self) -> bool:
        """True when a lock output is configured (the serial relay, or a command)."""
        return self.serial is not None or self.command is not None

    # -- life -------------------------------------------------------------------------------
    def start(self) -> OutputResult | None:
        """The door starts locked: send the relock bytes (a door that crashed while open closes)."""
        if self.serial is None or not self.serial.relock_bytes:
            return None
        result = self.serial.relock()
        if not result.ok:
            if self.log_event is None:  # the access log is not open yet: logged once it is attached
                self._unlogged_start = f"lock at start failed: {result.detail}"
            else:
                self._event("door_lock_failed", f"lock at start failed: {result.detail}")
        return result

    def attach_log(self, log_event: Callable[..., Any]) -> None:
        """Write the outputs' events with ``log_event`` from now on. A door locks before it opens
        its access log (:meth:`start` first); a lock at start that failed is logged now."""
        self.log_event = log_event
        detail, self._unlogged_start = self._unlogged_start, None
        if detail is not None:
            self._event("door_lock_failed", detail)

    def close(self, timeout_s: float = 5.0) -> None:
        """Lock the door (the relock bytes are always sent, open or not: fail secure), deliver
        queued webhooks (within ``timeout_s``), write the outputs' events, then stop the threads.
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.serial is not None:
            self.serial.close()  # its result reaches _relock_done
        if self.webhook is not None:
            self.webhook.close(timeout_s)
        thread = self._event_thread
        if thread is not None:
            try:
                self._events.put(_STOP, timeout=1.0)
            except queue.Full:
                pass
            thread.join(timeout_s)

    # -- decisions ----------------------------------------------------------------------------
    def dispatch(self, record: DoorRecord) -> Dispatch:
        """Drive the outputs for one recorded decision (see the module doc). Never raises."""
        payload = decision_payload(record, door_id=self.door_id)
        granted = bool(record.granted)
        results: list[OutputResult] = []
        lock_results: list[OutputResult] = []
        if granted and self.serial is not None:
            lock_results.append(self._safely(self.serial.name, "unlock", self.serial.unlock))
        if self.command is not None and self.command.wants(granted):
            result = self._safely(self.command.name, "unlock" if granted else "run", lambda: self.command.run(payload))
            self._event("door_command", f"{result.detail} in {result.elapsed_s:.2f} s; {_about(payload)}")
            (lock_results if granted else results).append(result)
        results = lock_results + results
        lock = LockState.NONE
        if granted and lock_results:
            lock = LockState.OPENED if all(r.ok for r in lock_results) else LockState.UNREACHABLE
        if lock is LockState.UNREACHABLE:
            failed = "; ".join(r.detail for r in lock_results if not r.ok)
            log.error("door lock unreachable: %s", failed)
            self._event("door_lock_failed", f"unlock failed: {failed}; {_about(payload)}")
        queued = False
        if self.webhook is not None:
            queued = self.webhook.submit({**payload, "lock": lock.value})
        return Dispatch(record, payload, lock, tuple(results), queued)

    # -- internals ------------------------------------------------------------------------------
    @staticmethod
    def _safely(name: str, action: str, func: Callable[[], OutputResult]) -> OutputResult:
        try:
            return func()
        except Exception as exc:  # a bug in an output is a failed output, never a crashed door
            log.exception("door output %s failed", name)
            return OutputResult(name, action, False, f"{type(exc).__name__}: {exc}")

    def _relock_done(self, result: OutputResult) -> None:
        if not result.ok:
            self._event("door_lock_failed", f"relock failed (the door may be open): {result.detail}")
        elif result.attempts > 1:  # an owed relock that failed got through at last
            self._event("door_lock_relocked", f"relock got through after {result.attempts} tries: {result.detail}")

    def _webhook_done(self, result: OutputResult, payload: dict[str, Any]) -> None:
        if not result.ok:
            self._event("door_webhook_failed", f"{result.detail}; {_about(payload)}")

    def _event(self, kind: str, detail: str) -> None:
        if self.log_event is None:
            return
        with self._lock:
            if self._event_thread is None:
                self._event_thread = threading.Thread(target=self._write_events, name="door-output-log", daemon=True)
                self._event_thread.start()
        try:
            self._events.put_nowait((kind, detail))
        except queue.Full:
            log.error("door output event not logged (too many waiting): %s: %s", kind, detail)

    def _write_events(self) -> None:
        while True:
            item = self._events.get()
            if item is _STOP:
                return
            kind, detail = item
            if kind == "__flush__":
                detail.set()
                continue
            try:
                self.log_event(kind, detail=detail)
            except Exception as exc:  # the access log is down: the door goes on, the log says so
                log.error("door output event %s not logged (%s: %s): %s", kind, type(exc).__name__, exc, detail)

    def flush_events(self, timeout_s: float = 5.0) -> bool:
        """Wait until the outputs' events queued so far are written (tests, the end of a run)."""
        done = threading.Event()
        if self._event_thread is None:
            return True
        try:
            self._events.put(("__flush__", done), timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)


def _about(payload: dict[str, Any]) -> str:
    """Which decision an output event is about (its event id, decision, door)."""
    event = payload.get("event_id")
    who = f" {payload['name']}" if payload.get("name") else ""
    return f"decision {payload['decision']}{who} (event {event if event is not None else 'not logged'}) at door {payload['door']}"

