"""``door_webhook_url``: an HTTP POST of each decision as JSON, in the background.

The door hands a decision to :meth:`WebhookOutput.submit`, which returns at once: a thread of
its own posts it, from a bounded queue (a full queue drops the new notice, and says so). Each
POST carries the JSON body (:func:`faceapp.outputs.base.payload_json`) and, with a secret,
``X-Faceapp-Signature: sha256=<hex HMAC-SHA256 of the body>``; ``X-Faceapp-Event-Id`` names
the decision's event. A 2xx answer is a delivery; a connection failure, a time-out, 408, 429
or a 5xx is tried again after a backoff (``backoff_s``, doubling) up to ``retries`` times and
within ``max_total_s``; any other answer (a 3xx is not followed, a 4xx) fails at once. Each
final failure is reported to ``on_result`` (the door logs it as an event).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from faceapp import __version__
from faceapp.outputs.base import OutputResult, payload_json

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Faceapp-Signature"
EVENT_HEADER = "X-Faceapp-Event-Id"
QUEUE_SIZE = 100
_RETRY_STATUS = {408, 429}
_STOP = object()


def signature(secret: str | bytes, body: bytes) -> str:
    """The value of the signature header for ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - a 3xx is an answer, not a hop
        return None


class WebhookOutput:
    """POSTs decisions to ``url`` from a background thread (started by the first ``submit``)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        secret: str = "",
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_total_s: float = 60.0,
        queue_size: int = QUEUE_SIZE,
        on_result: Callable[[OutputResult, dict[str, Any]], None] | None = None,
    ) -> None:
        if not timeout_s > 0 or retries < 0 or backoff_s < 0 or not max_total_s > 0:
            raise ValueError("timeout_s and max_total_s must be over 0, retries and backoff_s at least 0")
        self.url = url
        self.secret = secret
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_total_s = float(max_total_s)
        self.on_result = on_result
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirect)
        self.delivered = 0
        self.failed = 0

    # -- the door's side ----------------------------------------------------------------------
    def submit(self, payload: dict[str, Any]) -> bool:
        """Queue ``payload`` for posting; never blocks. False when the queue is full or closed."""
        if self._stop.is_set():
            return False
        self._ensure_thread()
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self._report(OutputResult(self.name, "notify", False, f"{self.url}: {self._queue.maxsize} notices are "
                                      "waiting already (the receiver is down?): this one is dropped", attempts=0),
                         payload)
            return False
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for at most ``timeout_s``, then stop (what is left is dropped)."""
        thread = self._thread
        if thread is None:
            self._stop.set()
            return
        deadline = time.monotonic() + timeout_s
        try:
            self._queue.put(_STOP, timeout=max(0.01, timeout_s))
        except queue.Full:
            pass
        thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()  # a delivery still running stops retrying
        thread.join(self.timeout_s + 1.0)
        left = self._queue.qsize()
        if left:
            log.warning("webhook %s: %d notice(s) not delivered before the door stopped", self.url, left)

    def pending(self) -> int:
        return self._queue.qsize()

    # -- delivery -------------------------------------------------------------------------------
    def deliver(self, payload: dict[str, Any]) -> OutputResult:
        """POST ``payload`` now, with the retries; returns the final result (also on this thread)."""
        body = payload_json(payload)
        headers = {"Content-Type": "application/json", "User-Agent": f"faceapp/{__version__}"}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        if payload.get("event_id") is not None:
            headers[EVENT_HEADER] = str(payload["event_id"])
        start = time.monotonic()
        deadline = start + self.max_total_s
        delay, attempt, reason = self.backoff_s, 0, ""
        while True:
            attempt += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            retry = False
            try:
                left = max(0.05, min(self.timeout_s, deadline - time.monotonic()))
                with self._opener.open(request, timeout=left) as answer:
                    status = answer.status
                    answer.read(65536)
                if 200 <= status < 300:
                    return OutputResult(self.name, "notify", True, f"{self.url}: HTTP {status}", attempts=attempt,
                                        elapsed_s=time.monotonic() - start)
                reason = f"HTTP {status}"
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
                retry = exc.code in _RETRY_STATUS or exc.code >= 500
                exc.close()
            except (urllib.error.URLError, OSError, ValueError) as exc:
                why = getattr(exc, "reason", None) or exc
                reason = f"{type(why).__name__}: {why}" if not isinstance(why, str) else why
                retry = True
            left = deadline - time.monotonic()
            if not retry or attempt > self.retries or left <= delay or self._stop.is_set():
                break
            if self._stop.wait(delay):
                break
            delay *= 2
        return OutputResult(self.name, "notify", False, f"{self.url}: not delivered after {attempt} attempt(s): {reason}",
                            attempts=attempt, elapsed_s=time.monotonic() - start)

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="door-webhook", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is _STOP:
                return
            try:
                result = self.deliver(payload)
            except Exception as exc:  # a bug must not end the thread: the next notices still go out
                log.exception("webhook delivery failed")
                result = OutputResult(self.name, "notify", False, f"{self.url}: {type(exc).__name__}: {exc}")
            self._report(result, payload)

    def _report(self, result: OutputResult, payload: dict[str, Any]) -> None:
        if result.ok:
            self.delivered += 1
            log.debug("webhook: %s", result.detail)
        else:
            self.failed += 1
            log.warning("webhook: %s", result.detail)
        if self.on_result is not None:
            try:
                self.on_result(result, payload)
            except Exception:
                log.exception("webhook result handler failed")
