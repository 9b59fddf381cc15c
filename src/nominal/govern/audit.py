"""The audit log: append-only, hash-chained, sealed at intervals with a key outside the database.

Each entry records who (user, partner, role), when, from where, for which purpose, what
was asked (action, dataset), which records and nominals were returned, the written
justification if any, and the outcome. Its ``hash`` is the SHA-256 of its own fields
and of the previous entry's hash, so editing, deleting, inserting or reordering an
entry breaks the chain at that point and :func:`verify` names the first bad entry.

A chain alone cannot stop someone with write access from rewriting every entry after
the one they changed. So every ``anchor_every`` entries the head hash is *sealed*: an
HMAC with a key kept in the hub's ``keys/`` folder, never in the database. A rewritten
chain no longer matches its seals; a truncated one ends before its last seal.

The database refuses UPDATE and DELETE on the table too (triggers created by the
migration), so tampering needs deliberate privileged SQL, and is then still detected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nominal.db import ControlPlane
from nominal.govern.models import AuditAnchor, AuditEntry, User

GENESIS = "0" * 64
ANCHOR_KEY_NAME = "audit-anchor"
DEFAULT_ANCHOR_EVERY = 100

# The fields that go into an entry's hash, in a fixed order.
HASHED_FIELDS: tuple[str, ...] = (
    "seq",
    "at",
    "user_id",
    "username",
    "partner",
    "role",
    "purpose",
    "action",
    "dataset",
    "record_keys",
    "nominal_ids",
    "justification",
    "outcome",
    "client",
    "detail",
    "prev_hash",
)


def _timestamp(value: datetime | str) -> str:
    """One text form of a timestamp whatever the database returns (SQLite drops the zone)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(values: dict[str, Any]) -> str:
    payload = {
        name: (_timestamp(values[name]) if name == "at" else values.get(name))
        for name in HASHED_FIELDS
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _row_values(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in HASHED_FIELDS}


def seal(key: bytes, seq: int, head: str) -> str:
    return hmac.new(key, f"{seq}:{head}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain: ``ok``, or the first bad entry and what is wrong."""

    ok: bool
    entries: int
    anchors: int
    first_bad_seq: int | None = None
    problem: str | None = None
    unsealed_tail: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "anchors_checked": self.anchors,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "unsealed_tail": self.unsealed_tail,
        }


def _entry_values(
    action: str,
    outcome: str,
    user: User | None,
    *,
    username: str | None = None,
    purpose: str | None = None,
    dataset: str | None = None,
    record_keys: Iterable[str] = (),
    nominal_ids: Iterable[str] = (),
    justification: str | None = None,
    client: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "at": at or datetime.now(UTC),
        "user_id": user.id if user else None,
        "username": user.username if user else username,
        "partner": user.partner.code if user else None,
        "role": user.role if user else None,
        "purpose": purpose,
        "action": action,
        "dataset": dataset,
        "record_keys": json.dumps(sorted(set(record_keys))),
        "nominal_ids": json.dumps(sorted(set(nominal_ids))),
        "justification": justification,
        "outcome": outcome,
        "client": client,
        "detail": json.dumps(detail or {}, sort_keys=True, default=str),
    }


@contextmanager
def _writer_turn(path: Path | None) -> Iterator[None]:
    """Hold the exclusive OS lock on ``path`` (if any) for the block."""
    if path is None:
        yield
        return
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class _Pending:
    """An entry waiting for the group commit, and what became of it."""

    values: dict[str, Any]
    entry: AuditEntry | None = None
    error: BaseException | None = None
    finished: bool = False


@dataclass
class AuditLog:
    """Writes and checks the audit chain of one control plane."""

    control: ControlPlane
    anchor_key: bytes
    anchor_every: int = DEFAULT_ANCHOR_EVERY
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _queue: list[_Pending] = field(default_factory=list, repr=False)

    # -- writing ------------------------------------------------------------------------
    def record(
        self,
        action: str,
        outcome: str,
        *,
        user: User | None = None,
        username: str | None = None,
        purpose: str | None = None,
        dataset: str | None = None,
        record_keys: Iterable[str] = (),
        nominal_ids: Iterable[str] = (),
        justification: str | None = None,
        client: str | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry in its own transaction (so a denial is recorded even if the
        request then fails) and return it."""
        values = _entry_values(
            action, outcome, user, username=username, purpose=purpose, dataset=dataset,
            record_keys=record_keys, nominal_ids=nominal_ids, justification=justification,
            client=client, detail=detail, at=at,
        )  # fmt: skip
        # Group commit: every caller queues its entry; whoever holds the writer lock next
        # appends everything queued in one transaction. Each caller returns only once its
        # own entry is committed (or raises its error), so an entry is as durable as before
        # when ``record`` returns, while concurrent requests share one commit.
        pending = _Pending(values)
        with self._queue_lock:
            self._queue.append(pending)
        with self._lock:
            if not pending.finished:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if pending.error is not None:
            raise pending.error
        assert pending.entry is not None
        return pending.entry

    def _write(self, batch: list[_Pending]) -> None:
        """Append ``batch`` in one transaction; if that fails, every caller gets the error.

        (Not retried one by one: when the database is unreachable or its connection pool
        exhausted, that would hold the writer lock for a timeout per entry.)
        """
        try:
            entries = self._append_retrying([p.values for p in batch])
        except Exception as exc:
            for one in batch:
                one.error = exc
                one.finished = True
            return
        for one, entry in zip(batch, entries, strict=True):
            one.entry = entry
            one.finished = True

    def _append_retrying(self, rows: list[dict[str, Any]]) -> list[AuditEntry]:
        for _attempt in range(50):
            try:
                return self._append(rows)
            except IntegrityError:
                # Another process took this place in the chain first: read the new head.
                continue
        raise RuntimeError("could not append to the audit chain after 50 attempts")

    def record_in(self, session: Session, action: str, outcome: str, **kwargs: Any) -> AuditEntry:
        """Append one entry inside the caller's transaction (same arguments as :meth:`record`).

        The entry commits with the change it records, or neither does: a server killed
        between the two can leave neither half behind (a task with no audit entry, say).
        On PostgreSQL a concurrent append taking the same place in the chain fails this
        one's savepoint, and it retries on the new head; SQLite serialises writers, and
        the caller's transaction already holds the write lock when it has written.
        """
        user = kwargs.pop("user", None)
        values = _entry_values(action, outcome, user, **kwargs)
        nested = session.get_bind().dialect.name != "sqlite"
        for _attempt in range(50):
            try:
                if not nested:
                    return self._append_to(session, [values])[0]
                with session.begin_nested():
                    return self._append_to(session, [values])[0]
            except IntegrityError:
                continue
        raise RuntimeError("could not append to the audit chain after 50 attempts")

    def _append(self, rows: list[dict[str, Any]]) -> list[AuditEntry]:
        """Append in one transaction on the control plane's writer connection.

        Its own connection (never one of the request pool's); on a SQLite file the
        processes sharing it take turns through an OS file lock first, so the next
        writer starts as soon as the last one commits, and its ``BEGIN IMMEDIATE``
        holds the write lock while the head is read. The commit (``synchronous=FULL``
        on SQLite) is durable when this returns.
        """
        with (
            _writer_turn(self.control.writer_lock_path()),
            Session(self.control.writer(), expire_on_commit=False) as session,
            session.begin(),
        ):
            return self._append_to(session, rows)

    def _append_to(self, session: Session, rows: list[dict[str, Any]]) -> list[AuditEntry]:
        """Chain ``rows`` after the current head inside ``session`` (written, not committed).

        Written with Core ``INSERT``s, not the unit of work: the writer holds the chain's
        lock meanwhile, and the ORM's flush was most of that time. The entries returned
        are not attached to ``session``.
        """
        entries: list[dict[str, Any]] = []
        anchors: list[dict[str, Any]] = []
        head = session.execute(
            sa.select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS)
        for values in rows:
            seq += 1
            row = {**values, "seq": seq, "prev_hash": prev}
            row["hash"] = prev = entry_hash(row)
            entries.append(row)
            if seq % self.anchor_every == 0:
                anchors.append(
                    {"seq": seq, "hash": row["hash"],
                     "seal": seal(self.anchor_key, seq, row["hash"])}
                )  # fmt: skip
        session.execute(sa.insert(cast(sa.Table, AuditEntry.__table__)), entries)
        if anchors:
            session.execute(sa.insert(cast(sa.Table, AuditAnchor.__table__)), anchors)
        return [AuditEntry(**row) for row in entries]

    def anchor(self) -> AuditAnchor | None:
        """Seal the current head now (e.g. at the end of each day)."""
        with self.control.session() as session:
            head = session.scalar(sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
            if head is None:
                return None
            existing = session.scalar(sa.select(AuditAnchor).where(AuditAnchor.seq == head.seq))
            if existing is not None:
                return existing
            anchor = AuditAnchor(
                seq=head.seq, hash=head.hash, seal=seal(self.anchor_key, head.seq, head.hash)
            )
            session.add(anchor)
            session.flush()
            return anchor

    # -- reading ------------------------------------------------------------------------
    def entries(self, batch: int = 2000) -> Iterator[AuditEntry]:
        """Every entry in chain order, read in batches."""
        last = 0
        while True:
            with self.control.session() as session:
                rows = list(
                    session.scalars(
                        sa.select(AuditEntry)
                        .where(AuditEntry.seq > last)
                        .order_by(AuditEntry.seq)
                        .limit(batch)
                    )
                )
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def verify(self) -> Verification:
        """Walk the chain and the seals; report the first entry that does not check out."""
        with self.control.session() as session:
            anchors = list(session.scalars(sa.select(AuditAnchor).order_by(AuditAnchor.seq)))
        bad_seals = [
            a
            for a in anchors
            if not hmac.compare_digest(a.seal, seal(self.anchor_key, a.seq, a.hash))
        ]
        if bad_seals:
            a = bad_seals[0]
            return Verification(
                False, 0, len(anchors), a.seq, f"the seal of anchor at entry {a.seq} is forged"
            )
        by_seq = {a.seq: a for a in anchors}
        expected_seq, prev = 1, GENESIS
        count = 0
        last_sealed = 0
        for entry in self.entries():
            count += 1
            if entry.seq != expected_seq:
                if entry.seq > expected_seq:
                    problem = f"entry {expected_seq} is missing (deleted) before entry {entry.seq}"
                else:
                    problem = f"entry {entry.seq} is out of order after entry {expected_seq - 1}"
                return Verification(False, count, len(anchors), entry.seq, problem)
            if entry.prev_hash != prev:
                return Verification(
                    False,
                    count,
                    len(anchors),
                    entry.seq,
                    f"entry {entry.seq} does not follow entry {entry.seq - 1} "
                    "(an entry was inserted, deleted or reordered here)",
                )
            if entry_hash(_row_values(entry)) != entry.hash:
                return Verification(
                    False, count, len(anchors), entry.seq, f"entry {entry.seq} was altered"
                )
            anchor = by_seq.get(entry.seq)
            if anchor is not None:
                if anchor.hash != entry.hash:
                    return Verification(
                        False,
                        count,
                        len(anchors),
                        entry.seq,
                        f"the chain up to entry {entry.seq} was rewritten (it no longer matches its seal)",
                    )
                last_sealed = entry.seq
            prev = entry.hash
            expected_seq += 1
        beyond = [a.seq for a in anchors if a.seq >= expected_seq]
        if beyond:
            return Verification(
                False,
                count,
                len(anchors),
                expected_seq,
                f"the chain ends at entry {expected_seq - 1} but entry {beyond[0]} was sealed "
                "(entries were deleted from the end)",
            )
        return Verification(True, count, len(anchors), unsealed_tail=count - last_sealed)

    def search(
        self,
        *,
        username: str | None = None,
        dataset: str | None = None,
        record_key: str | None = None,
        nominal_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 500,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, newest first ("who has looked at this person?")."""
        query = sa.select(AuditEntry)
        if username:
            query = query.where(AuditEntry.username == username)
        if dataset:
            query = query.where(AuditEntry.dataset == dataset)
        if action:
            query = query.where(AuditEntry.action == action)
        if record_key:
            query = query.where(AuditEntry.record_keys.contains(json.dumps(record_key)))
        if nominal_id:
            query = query.where(AuditEntry.nominal_ids.contains(json.dumps(nominal_id)))
        if since:
            query = query.where(AuditEntry.at >= since)
        if until:
            query = query.where(AuditEntry.at <= until)
        with self.control.session() as session:
            return list(session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit)))

    def export(self, out: IO[str]) -> int:
        """Write every entry as one JSON line (with its hashes, so the export can be checked)."""
        count = 0
        for entry in self.entries():
            out.write(json.dumps(entry_json(entry), sort_keys=True) + "\n")
            count += 1
        return count


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": _timestamp(entry.at),
        "user_id": entry.user_id,
        "username": entry.username,
        "partner": entry.partner,
        "role": entry.role,
        "purpose": entry.purpose,
        "action": entry.action,
        "dataset": entry.dataset,
        "record_keys": json.loads(entry.record_keys),
        "nominal_ids": json.loads(entry.nominal_ids),
        "justification": entry.justification,
        "outcome": entry.outcome,
        "client": entry.client,
        "detail": json.loads(entry.detail),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def audit_log(
    control: ControlPlane, keys_home: Any, anchor_every: int = DEFAULT_ANCHOR_EVERY
) -> AuditLog:
    """The audit log of a control plane, sealed with the hub home's anchor key."""
    return AuditLog(control, keys_home.secret(ANCHOR_KEY_NAME), anchor_every)


def export_to(log: AuditLog, path: Path) -> int:
    with open(path, "w", encoding="utf-8") as handle:
        return log.export(handle)
