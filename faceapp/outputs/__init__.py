"""What a door decision drives: a lock relay on a serial port, a command, a webhook.

Qt-free, below :mod:`faceapp.services` (it needs only the recorded decision): the GUI's door
and the headless door (``faceapp door --headless``) both hand each
:class:`faceapp.door_log.DoorRecord` to :meth:`DoorOutputs.dispatch`. Every output fails
secure: only a committed grant unlocks, and an output that fails is reported
(:class:`Dispatch.lock` ``UNREACHABLE``, "lock unreachable" on the door screen) and logged as an
event of its own, never turning a denial into a grant. Settings: ``door_serial*``,
``door_unlock_s``, ``door_command*``, ``door_webhook_*``, ``door_id`` (README "Wiring a door").
"""

from faceapp.outputs.base import LockState, OutputResult, decision_payload, payload_env, payload_json
from faceapp.outputs.command import CommandOutput
from faceapp.outputs.door_outputs import Dispatch, DoorOutputs
from faceapp.outputs.serial_lock import SerialLock
from faceapp.outputs.webhook import SIGNATURE_HEADER, WebhookOutput, signature

__all__ = [
    "SIGNATURE_HEADER",
    "CommandOutput",
    "Dispatch",
    "DoorOutputs",
    "LockState",
    "OutputResult",
    "SerialLock",
    "WebhookOutput",
    "decision_payload",
    "payload_env",
    "payload_json",
    "signature",
]
