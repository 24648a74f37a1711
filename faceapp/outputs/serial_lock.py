"""``door_serial``: a lock relay on a serial port (USB relay boards: CH340 / LCUS-1 and alike).

On a grant the unlock bytes are written; ``unlock_s`` later the relock bytes (none for a relay
that closes by itself). A grant while the door is open keeps it open ``unlock_s`` from then.
The port is opened for each write and closed after it, so a board that was unplugged and
plugged in again works at the next decision.

Fail secure: from a written unlock until a relock gets through, a relock is *owed*
(:attr:`SerialLock.unlocked`). A timed relock that fails (EIO, a port busy or re-enumerating) is
tried again with backoff (``RELOCK_RETRY_S`` doubling up to ``RELOCK_RETRY_MAX_S``) for as long as
it is owed, never given up: the first failure is reported (``on_result``; the door logs it as
``door_lock_failed``), every retry is logged, and the one that gets through is reported with its
``attempts``. :meth:`SerialLock.close` always writes the relock bytes (a door that stops does not
stay open, whatever it believes the relay's state to be), after an unlock in flight has finished
(one lock covers an unlock with its timer and the close); a closed lock unlocks no more.
Needs pyserial (``import serial``), imported on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from faceapp.outputs.base import OutputResult

log = logging.getLogger(__name__)

IO_TIMEOUT_S = 1.0  # the longest one write may block (a board that does not drain)
RELOCK_RETRY_S = 0.5  # an owed relock that failed is tried again this long after,
RELOCK_RETRY_MAX_S = 30.0  # the wait doubling at each failure up to this
CLOSE_RETRIES = 2  # close() tries a failed relock again this often, RELOCK_RETRY_S apart (it must end)


class SerialLock:
    name = "serial"

    def __init__(
        self,
        port: str,
        *,
        unlock: bytes,
        relock: bytes = b"",
        unlock_s: float = 5.0,
        baud: int = 9600,
        on_result: Callable[[OutputResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not unlock:
            raise ValueError("the unlock bytes are empty")
        if not unlock_s > 0:
            raise ValueError(f"unlock_s must be over 0 (got {unlock_s})")
        self.port = port
        self.unlock_bytes = bytes(unlock)
        self.relock_bytes = bytes(relock)
        self.unlock_s = float(unlock_s)
        self.baud = int(baud)
        # gets the timed relock's first failure and its success (from the timer's thread), and close()'s result
        self.on_result = on_result
        self.clock = clock
        # one lock for the state and the port: an unlock and the timer it sets, a timed relock,
        # and close() never interleave (close() waits for an unlock in flight, then relocks)
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._owed = False  # a relock is due: unlocked, and no relock has got through since
        self._failures = 0  # failed relocks since the last one that got through
        self._closed = False

    @property
    def unlocked(self) -> bool:
        """True from an unlock until a relock gets through (a failed relock keeps it True)."""
        return self._owed

    def unlock(self) -> OutputResult:
        """Write the unlock bytes now; the relock follows ``unlock_s`` later (when there are relock
        bytes). Refused once the lock is closed."""
        with self._lock:
            if self._closed:
                return OutputResult(self.name, "unlock", False, f"{self.port}: not unlocked: the door is stopping")
            result = self._write("unlock", self.unlock_bytes)
            if result.ok and self.relock_bytes:
                self._owed = True
                self._start_timer(self.unlock_s)
            return result

    def relock(self) -> OutputResult:
        """Write the relock bytes now (instead of a pending timed relock). One that fails is owed
        and retried in the background, as a failed timed relock is."""
        if not self.relock_bytes:
            return OutputResult(self.name, "relock", True, f"{self.port}: no relock bytes (the relay closes by itself)")
        with self._lock:
            self._cancel_timer()
            result = self._relock_once()
            if not result.ok and not self._closed:
                self._start_timer(self._backoff())
        if not result.ok:
            log.error("door lock: %s (the door may be open; retried until it gets through)", result.detail)
        return result

    def close(self) -> OutputResult | None:
        """Lock now, whatever the state (the result; None without relock bytes), and stop the
        retries. Waits for an unlock in flight; afterwards nothing unlocks."""
        with self._lock:
            self._closed = True
            self._cancel_timer()
            if not self.relock_bytes:
                return None
            result = self._relock_once()
            for _ in range(CLOSE_RETRIES):
                if result.ok:
                    break
                time.sleep(RELOCK_RETRY_S)
                result = self._relock_once()
        if not result.ok:
            result = OutputResult(result.output, result.action, False,
                                  f"{result.detail} (at stop, after {CLOSE_RETRIES + 1} tries: the door may be open)",
                                  attempts=result.attempts, elapsed_s=result.elapsed_s)
        self._report(result)
        return result

    # -- internals --------------------------------------------------------------------------
    def _write(self, action: str, data: bytes) -> OutputResult:
        start = self.clock()
        try:
            import serial  # pyserial
        except ImportError:
            return OutputResult(self.name, action, False, f"{self.port}: pyserial is not installed (pip install pyserial)")
        try:
            port = serial.Serial(self.port, self.baud, timeout=IO_TIMEOUT_S, write_timeout=IO_TIMEOUT_S)
            try:
                written = port.write(data)
                port.flush()
            finally:
                port.close()
        except (serial.SerialException, OSError, ValueError) as exc:
            return OutputResult(self.name, action, False, f"{self.port}: {action} failed: {_one_line(exc)}",
                                elapsed_s=self.clock() - start)
        if written != len(data):
            return OutputResult(self.name, action, False, f"{self.port}: {action} failed: {written} of {len(data)} bytes "
                                "written", elapsed_s=self.clock() - start)
        return OutputResult(self.name, action, True, f"{self.port}: {action} ({data.hex(' ').upper()})",
                            elapsed_s=self.clock() - start)

    def _relock_once(self) -> OutputResult:
        """One relock write (the lock held): clears the debt when it gets through, counts a failure
        otherwise (a failed relock is owed whether or not one was before: the relay's state is unknown)."""
        result = self._write("relock", self.relock_bytes)
        attempts = self._failures + 1
        if result.ok:
            self._owed = False
            self._failures = 0
        else:
            self._owed = True
            self._failures += 1
        return OutputResult(result.output, result.action, result.ok, result.detail, attempts=attempts,
                            elapsed_s=result.elapsed_s)

    def _backoff(self) -> float:
        return min(RELOCK_RETRY_MAX_S, RELOCK_RETRY_S * 2 ** max(0, self._failures - 1))

    def _start_timer(self, delay: float) -> None:
        """(The lock held.) The owed relock ``delay`` from now, replacing a pending one."""
        self._cancel_timer()
        timer = threading.Timer(delay, self._timed_relock)
        timer.daemon = True
        timer.name = "door-relock"
        self._timer = timer
        timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_relock(self) -> None:
        with self._lock:
            if self._timer is not threading.current_thread() or self._closed:
                return  # cancelled, or replaced by a later grant (or close)
            self._timer = None
            result = self._relock_once()
            if not result.ok:
                self._start_timer(self._backoff())  # never given up while owed
                delay = self._timer.interval
        if result.ok:
            if result.attempts > 1:
                log.warning("door lock: %s, after %d tries", result.detail, result.attempts)
            self._report(result)
        elif result.attempts == 1:
            self._report(result)  # the first failure is reported (an event); the retries are logged
        else:
            log.error("door lock: %s (try %d; the door may be open; next try in %.1f s)",
                      result.detail, result.attempts, delay)

    def _report(self, result: OutputResult) -> None:
        (log.info if result.ok else log.error)("door lock: %s", result.detail)
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.exception("lock result handler failed")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
