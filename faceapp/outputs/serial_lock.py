"""``door_serial``: a lock relay on a serial port (USB relay boards: CH340 / LCUS-1 and alike).

On a grant the unlock bytes are written; ``unlock_s`` later the relock bytes (none for a relay
that closes by itself). A grant while the door is open keeps it open ``unlock_s`` from then.
The port is opened for each write and closed after it, so a board that was unplugged and
plugged in again works at the next decision. :meth:`SerialLock.close` locks at once (a door
that stops does not stay open). Needs pyserial (``import serial``), imported on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from faceapp.outputs.base import OutputResult

log = logging.getLogger(__name__)

IO_TIMEOUT_S = 1.0  # the longest one write may block (a board that does not drain)
RELOCK_RETRIES = 2  # a timed relock that fails is tried again this often,
RELOCK_RETRY_S = 0.5  # this long apart


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
        self.on_result = on_result  # gets the timed relock's result (from the timer's thread)
        self.clock = clock
        self._io = threading.Lock()
        self._timer_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False

    @property
    def unlocked(self) -> bool:
        """True between an unlock and the relock that follows it."""
        with self._timer_lock:
            return self._timer is not None

    def unlock(self) -> OutputResult:
        """Write the unlock bytes now; the relock follows ``unlock_s`` later (when there are relock bytes)."""
        result = self._write("unlock", self.unlock_bytes)
        if result.ok and self.relock_bytes:
            self._schedule_relock()
        return result

    def relock(self) -> OutputResult:
        """Write the relock bytes now (and forget a pending timed relock)."""
        self._cancel_timer()
        if not self.relock_bytes:
            return OutputResult(self.name, "relock", True, f"{self.port}: no relock bytes (the relay closes by itself)")
        return self._write("relock", self.relock_bytes)

    def close(self) -> OutputResult | None:
        """Lock now when the door is open (the result), and stop the timer."""
        was_open = self.unlocked
        self._closed = True
        if was_open:
            result = self.relock()
            self._report(result)
            return result
        self._cancel_timer()
        return None

    # -- internals --------------------------------------------------------------------------
    def _write(self, action: str, data: bytes) -> OutputResult:
        start = self.clock()
        try:
            import serial  # pyserial
        except ImportError:
            return OutputResult(self.name, action, False, f"{self.port}: pyserial is not installed (pip install pyserial)")
        try:
            with self._io:
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

    def _schedule_relock(self) -> None:
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
            timer = threading.Timer(self.unlock_s, self._timed_relock)
            timer.daemon = True
            timer.name = "door-relock"
            self._timer = timer
            timer.start()

    def _cancel_timer(self) -> None:
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _timed_relock(self) -> None:
        with self._timer_lock:
            if self._timer is None or self._timer is not threading.current_thread():
                return  # cancelled or replaced by a later grant
            self._timer = None
        result = self._write("relock", self.relock_bytes)
        for _ in range(RELOCK_RETRIES):  # the door stays open until a relock gets through
            if result.ok or self._closed:
                break
            time.sleep(RELOCK_RETRY_S)
            result = self._write("relock", self.relock_bytes)
        self._report(result)

    def _report(self, result: OutputResult) -> None:
        (log.info if result.ok else log.error)("door lock: %s", result.detail)
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                log.exception("lock result handler failed")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
