"""``door_command``: a program run on a decision, with the decision as JSON on stdin and as
``FACEAPP_DOOR_*`` environment variables (:func:`faceapp.outputs.base.payload_env`).

The program is started without a shell (the setting is split like a shell would split it), in
a session of its own, so that on the time limit the whole process group is stopped. Exit status
0 means it did its job (the lock opened); anything else, a time-out or a program that cannot be
started is a failed :class:`~faceapp.outputs.base.OutputResult`.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any

from faceapp.errors import ConfigError
from faceapp.outputs.base import OutputResult, payload_env, payload_json

log = logging.getLogger(__name__)

# what a command never inherits from the door's environment
_SECRET_VARS = ("FACEAPP_DOOR_WEBHOOK_SECRET",)
_TAIL = 200  # characters of the program's stderr kept in the result


def split_command(text: str) -> list[str]:
    """The argument list of a ``door_command`` setting (ConfigError when it cannot be split)."""
    try:
        argv = shlex.split(text, posix=os.name != "nt")
    except ValueError as exc:
        raise ConfigError(f"setting door_command cannot be split into a program and its arguments: {exc}") from None
    if not argv:
        raise ConfigError("setting door_command is empty")
    return argv


class CommandOutput:
    """Runs ``argv`` on granted decisions (``on="granted"``) or on every decision (``on="all"``)."""

    name = "command"

    def __init__(self, argv: list[str] | str, *, on: str = "granted", timeout_s: float = 5.0) -> None:
        if on not in ("granted", "all"):
            raise ValueError(f"on must be 'granted' or 'all' (got {on!r})")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be over 0 (got {timeout_s})")
        self.argv = split_command(argv) if isinstance(argv, str) else list(argv)
        self.on = on
        self.timeout_s = float(timeout_s)

    def wants(self, granted: bool) -> bool:
        return granted or self.on == "all"

    def run(self, payload: dict[str, Any]) -> OutputResult:
        """Run the program once for ``payload`` and wait for it (at most ``timeout_s``)."""
        action = "unlock" if payload.get("granted") else "run"
        env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARS}
        env.update(payload_env(payload))
        start = time.monotonic()
        program = self.argv[0]
        try:
            proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                start_new_session=sys.platform != "win32", close_fds=True,
            )
        except OSError as exc:
            return OutputResult(self.name, action, False, f"{program}: cannot be started: {exc.strerror or exc}",
                                elapsed_s=time.monotonic() - start)
        try:
            _, err = proc.communicate(payload_json(payload), timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self._stop(proc)
            return OutputResult(self.name, action, False, f"{program}: no exit within {self.timeout_s:g} s: stopped",
                                elapsed_s=time.monotonic() - start)
        elapsed = time.monotonic() - start
        tail = " ".join(err.decode("utf-8", "replace").split())[-_TAIL:] if err else ""
        code = proc.returncode
        text = f"{program}: exit {code}" if code >= 0 else f"{program}: killed by signal {-code}"
        if tail:
            text += f" ({tail})"
        return OutputResult(self.name, action, code == 0, text, exit_code=code, elapsed_s=elapsed)

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        """Kill the program and everything it started (its process group), then reap it."""
        try:
            if sys.platform != "win32":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.communicate(timeout=2.0)
        except subprocess.TimeoutExpired:  # a pipe kept open by something outside the group
            log.warning("door command %s: its output pipe stayed open after it was stopped", proc.args[0])
