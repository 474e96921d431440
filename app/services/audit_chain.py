"""The audit log as a hash chain (issue 15, item 4): tampering is detectable.

Every row stores ``prev_hash`` (the row before it) and ``row_hash`` =
SHA-256(prev_hash || canonical JSON of the row's fields). ``append`` is the only way a row is
written: it first updates the one-row ``audit_head`` (a row lock on PostgreSQL, the write
lock on SQLite), so appends from every worker are serialised and the chain never forks.

Two deletions are by design and recorded, so ``verify`` accepts them: an erasure (its own row
lists the id, previous and own hash of each audit row it removed, no values) and a retention
purge (its row records the hash of the newest row it removed: the chain's new start). An
edited field, a deleted or inserted row anywhere else breaks the chain at that row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from app.models import AuditEvent, AuditHead

GENESIS = "0" * 64
#: the fields a row's hash covers, in this order
FIELDS = ("time", "actor", "action", "method", "path", "patient_id", "status", "detail",
          "client_addr")


def _time(t: datetime) -> str:
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def digest(prev_hash: str, row: dict[str, Any]) -> str:
    """The row's hash: SHA-256 of the previous hash and the canonical JSON of FIELDS."""
    values = [_time(row["time"]) if name == "time" else row.get(name) for name in FIELDS]
    body = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(prev_hash.encode() + body.encode()).hexdigest()


def append(conn: Connection, row: dict[str, Any]) -> str:
    """Insert one audit row (``FIELDS``) chained to the newest; its hash. Runs in the
    caller's transaction (the head row stays locked until it commits)."""
    row = {name: row.get(name) for name in FIELDS}
    if conn.execute(update(AuditHead).where(AuditHead.id == 1)
                    .values(seq=AuditHead.seq)).rowcount == 0:  # take the lock first
        conn.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
    seq, prev = conn.execute(select(AuditHead.seq, AuditHead.hash)
                             .where(AuditHead.id == 1)).one()
    row_hash = digest(prev, row)
    conn.execute(insert(AuditEvent).values(**row, prev_hash=prev, row_hash=row_hash))
    conn.execute(update(AuditHead).where(AuditHead.id == 1)
                 .values(seq=seq + 1, hash=row_hash))
    return row_hash


def _rows(conn: Connection, **where: Any) -> Iterator[Any]:
    q = select(AuditEvent).where(AuditEvent.row_hash.is_not(None)).order_by(AuditEvent.id)
    for name, value in where.items():
        q = q.where(getattr(AuditEvent, name) == value)
    yield from conn.execute(q)


@dataclass(frozen=True)
class Verdict:
    """``ok``; the rows checked; the first bad row's id and why (when not ok)."""

    ok: bool
    checked: int
    bad_id: int | None = None
    reason: str = ""


def _recorded_gaps(conn: Connection) -> tuple[dict[int, tuple[str, str]], set[str]]:
    """(erased audit rows: id -> (prev_hash, row_hash); chain starts left by purges)."""
    erased: dict[int, tuple[str, str]] = {}
    starts = {GENESIS}
    for r in _rows(conn, action="erase"):
        for rid, prev, own in json.loads(r.detail or "{}").get("erased_audit", []):
            erased[int(rid)] = (prev, own)
    for r in _rows(conn, action="purge"):
        cut = json.loads(r.detail or "{}").get("chain_cut")
        if cut:
            starts.add(cut)
    return erased, starts


def verify(conn: Connection) -> Verdict:
    """Walk the log in id order: every row's hash must match its fields and link to the
    previous row, or to rows an erasure recorded, or (the first) to a purge's cut. Rows
    without a hash are accepted only before the chain's first row (written before it)."""
    erased, starts = _recorded_gaps(conn)
    expected: str | None = None
    checked = 0
    pending = sorted(erased.items())
    for r in conn.execute(select(AuditEvent).order_by(AuditEvent.id)):
        if r.row_hash is None:
            if expected is None:
                continue  # written before the chain existed
            return Verdict(False, checked, r.id, "a row without a hash inside the chain")
        while pending and pending[0][0] < r.id:  # erased rows stood here: link through them
            rid, (prev, own) = pending.pop(0)
            if expected is None and prev not in starts:
                continue  # erased, then purged with the chain's older part
            if expected is not None and prev != expected:
                return Verdict(False, checked, rid, "an erased row does not link to the chain")
            expected = own
        if expected is None and r.prev_hash not in starts:
            return Verdict(False, checked, r.id, "the chain's first row has an unknown start")
        if expected is not None and r.prev_hash != expected:
            return Verdict(False, checked, r.id,
                           "does not link to the row before it (a row was removed or added)")
        if digest(r.prev_hash, r._mapping) != r.row_hash:
            return Verdict(False, checked, r.id, "its fields do not match its hash (edited)")
        expected = r.row_hash
        checked += 1
    return Verdict(True, checked)


def chain_of(conn: Connection, ids: list[int]) -> list[list]:
    """[[id, prev_hash, row_hash], ...] of these audit rows (what an erasure records)."""
    if not ids:
        return []
    rows = conn.execute(select(AuditEvent.id, AuditEvent.prev_hash, AuditEvent.row_hash)
                        .where(AuditEvent.id.in_(ids), AuditEvent.row_hash.is_not(None))
                        .order_by(AuditEvent.id))
    return [[r.id, r.prev_hash, r.row_hash] for r in rows]
