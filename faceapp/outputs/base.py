"""What an output reports, and the decision it is given (one JSON object for every output)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from faceapp.door_log import DoorRecord


class LockState(str, enum.Enum):
    """What the lock outputs (serial relay, command) made of one decision."""

    NONE = "none"  # no lock output is configured, or the decision was not a grant
    OPENED = "opened"  # every lock output reported success
    UNREACHABLE = "unreachable"  # a lock output failed: the door did not open


@dataclass(frozen=True)
class OutputResult:
    """One output's action: ``output`` is ``serial``, ``command`` or ``webhook``; ``action`` is
    ``unlock``, ``relock``, ``run`` or ``notify``; ``detail`` says what happened in one line."""

    output: str
    action: str
    ok: bool
    detail: str = ""
    exit_code: int | None = None  # command: the program's exit status (None: it did not finish)
    attempts: int = 1
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"output": self.output, "action": self.action, "ok": self.ok, "detail": self.detail,
                "exit_code": self.exit_code, "attempts": self.attempts, "elapsed_s": round(self.elapsed_s, 3)}


def decision_payload(record: DoorRecord, *, door_id: str) -> dict[str, Any]:
    """The decision as the outputs send it: the RECORDED outcome (a grant only once its event is
    committed, with that event's id), the door and the time it was decided (UTC, ISO 8601)."""
    outcome = record.outcome
    return {
        "decision": outcome.decision.value,
        "granted": bool(record.granted),
        "mode": outcome.mode.value,
        "name": outcome.name if record.granted else None,
        "claimed": outcome.claimed,
        "distance": None if outcome.distance is None else round(float(outcome.distance), 6),
        "threshold": round(float(outcome.threshold), 6),
        "door": door_id,
        "time": record.decided_at.isoformat(),
        "event_id": record.event_id,
        "frames": outcome.frames,
        "detail": outcome.detail,
    }


def payload_json(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, keys sorted, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


ENV_PREFIX = "FACEAPP_DOOR_"


def payload_env(payload: dict[str, Any]) -> dict[str, str]:
    """The decision as environment variables for a command: FACEAPP_DOOR_DECISION (match,
    no_match, ...), FACEAPP_DOOR_GRANTED (1 or 0), FACEAPP_DOOR_NAME, _CLAIMED, _MODE, _DISTANCE,
    _THRESHOLD, _ID (the door), _TIME and _EVENT_ID; an empty string where a value is missing."""
    keys = {"decision": "DECISION", "mode": "MODE", "name": "NAME", "claimed": "CLAIMED", "distance": "DISTANCE",
            "threshold": "THRESHOLD", "door": "ID", "time": "TIME", "event_id": "EVENT_ID"}
    env = {ENV_PREFIX + var: "" if payload.get(key) is None else str(payload[key]) for key, var in keys.items()}
    env[ENV_PREFIX + "GRANTED"] = "1" if payload.get("granted") else "0"
    return env
