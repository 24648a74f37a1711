"""The access log's hash chain: what makes an edited, deleted or inserted event visible.

Each event stores ``prev_hash`` (the hash of the event before it, or :data:`GENESIS` for the
first) and ``hash = HMAC-SHA256(chain key, prev_hash || canonical(event))``. The chain key is
derived from the site key, which lives outside the database, so someone who can write the
database file (sqlite3, a SQL client) can delete, edit or insert rows but cannot make a
chain that verifies again. The database also refuses UPDATE and DELETE on the table with
triggers (migrations/versions/0002), so the application itself cannot rewrite it.

:func:`verify_chain` walks the events in id order and names the first broken link:
- an **edited** row: its hash does not match its content;
- a **deleted** row: the next row's ``prev_hash`` is not the hash of the row before it
  (or the newest row is not the chain's recorded end, when the tail was cut off);
- an **inserted** row: its hash cannot be computed without the key (it does not match).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS = "0" * 64  # prev_hash of the first event


def canonical(
    *,
    time: datetime,
    kind: str,
    decision: str | None,
    claimed: str | None,
    decided: str | None,
    person_id: int | None,
    distance: float | None,
    threshold: float | None,
    detail: str,
    uid: str | None = None,
) -> bytes:
    """The bytes an event's hash covers (UTF-8 JSON of its fields in a fixed order; times in
    UTC to the microsecond, floats by their shortest exact repr)."""
    t = time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)
    fields = [
        t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        kind,
        decision,
        claimed,
        decided,
        person_id,
        None if distance is None else float(distance),
        None if threshold is None else float(threshold),
        detail or "",
    ]
    if uid is not None:  # (events without one hash as they always did)
        fields.append(uid)
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode("utf-8")


def chain_hash(key: bytes, prev_hash: str, content: bytes) -> str:
    """The hash of an event whose predecessor's hash is ``prev_hash``."""
    return hmac.new(key, prev_hash.encode("ascii") + b"\n" + content, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainedRow:
    """What :func:`verify_chain` needs of one stored event."""

    id: int
    prev_hash: str | None
    hash: str | None
    content: bytes


@dataclass(frozen=True)
class ChainReport:
    """The result of checking the log: ``ok``, how many events were checked, and for a broken
    chain the id of the first event that does not verify and why."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"the access log is intact: {self.checked} event(s) verified"
        where = f"event {self.first_bad_id}" if self.first_bad_id is not None else "the end of the log"
        return f"the access log has been tampered with at {where}: {self.problem}"


def verify_chain(rows: Iterable[ChainedRow], key: bytes, *, head: tuple[int, str] | None) -> ChainReport:
    """Check every link of the chain; ``rows`` in id order, ``head`` the recorded newest
    ``(id, hash)``: ``(0, GENESIS)`` for a log that is empty; None to check the links only."""
    prev = GENESIS
    last: ChainedRow | None = None
    n = 0
    for row in rows:
        if row.hash is None or row.prev_hash is None:
            return ChainReport(False, n, row.id, "the event carries no hash (written around the application)")
        if row.prev_hash != prev:
            what = "the event before it was deleted or changed" if last is not None else "events before it were deleted"
            return ChainReport(False, n, row.id, f"its link to the previous event is broken ({what})")
        expected = chain_hash(key, row.prev_hash, row.content)
        if not hmac.compare_digest(expected, row.hash):
            return ChainReport(
                False, n, row.id, "its content does not match its hash (the event was edited, or inserted without the key)"
            )
        prev = row.hash
        last = row
        n += 1
    if head is not None:
        head_id, head_hash = head
        if (head_id, head_hash) == (0, GENESIS):
            if last is not None:
                return ChainReport(
                    False, n, None, f"the log was recorded as empty, but it holds events up to {last.id} "
                    "(written around the application)"
                )
        elif last is None or last.id != head_id or last.hash != head_hash:
            return ChainReport(
                False, n, None, f"the newest event recorded was {head_id}, but the log ends "
                f"{'empty' if last is None else f'at event {last.id}'} (events at the end were deleted)"
            )
    return ChainReport(True, n)
