"""The audit chain detects every kind of tampering, done directly in SQL, on both databases."""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from nominal.db import ControlPlane
from nominal.govern.audit import AuditLog, entry_hash

KEY = b"k" * 32


@pytest.fixture
def log(control: ControlPlane) -> Iterator[AuditLog]:
    audit = AuditLog(control, KEY, anchor_every=10)
    for i in range(1, 26):
        audit.record(
            "read",
            "allowed",
            username=f"user{i % 3}",
            purpose="safeguarding",
            dataset="crimes",
            record_keys=[f"rk{i}", f"rk{i + 1}"],
            nominal_ids=[f"N{i}"],
            client="127.0.0.1",
            detail={"rows": i},
        )
    assert audit.verify().ok
    yield audit


def tamper(control: ControlPlane, *statements: str, params: dict | None = None) -> None:
    """Run SQL on the audit table with its append-only triggers switched off, as a
    privileged attacker could."""
    postgres = control.engine.dialect.name == "postgresql"
    with control.engine.begin() as con:
        if postgres:
            con.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            con.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            con.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        for statement in statements:
            con.execute(sa.text(statement), params or {})
        if postgres:
            con.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_database_refuses_update_and_delete(log: AuditLog, control: ControlPlane) -> None:
    for statement in ("UPDATE audit_log SET outcome = 'denied'", "DELETE FROM audit_log"):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            control.engine.begin() as con,
        ):
            con.execute(sa.text(statement))
    assert log.verify().ok


def test_edit_detected(log: AuditLog, control: ControlPlane) -> None:
    tamper(control, "UPDATE audit_log SET justification = 'nothing to see' WHERE seq = 7")
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 7)
    assert "altered" in (result.problem or "")


def test_delete_detected(log: AuditLog, control: ControlPlane) -> None:
    tamper(control, "DELETE FROM audit_log WHERE seq = 12")
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 13)
    assert "missing" in (result.problem or "")


def test_insert_detected(log: AuditLog, control: ControlPlane) -> None:
    # Make room after entry 5 and forge a well-formed entry 6 chained to entry 5.
    shift = [f"UPDATE audit_log SET seq = seq + 1 WHERE seq = {s}" for s in range(25, 5, -1)]
    with control.engine.connect() as con:
        five = con.execute(sa.text("SELECT * FROM audit_log WHERE seq = 5")).mappings().one()
    forged = dict(five)
    forged.update(seq=6, username="intruder", prev_hash=five["hash"], record_keys='["rkX"]')
    forged["hash"] = entry_hash(forged)
    cols = ", ".join(forged)
    # prev_hash is unique, so the splice must also re-point the entry after it.
    tamper(
        control,
        *shift,
        f"UPDATE audit_log SET prev_hash = '{forged['hash']}' WHERE seq = 7",
        f"INSERT INTO audit_log ({cols}) VALUES ({', '.join(':' + c for c in forged)})",
        params=forged,
    )
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 7)


def test_reorder_detected(log: AuditLog, control: ControlPlane) -> None:
    tamper(
        control,
        "UPDATE audit_log SET seq = -3 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = -3",
    )
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_rewritten_chain_detected_by_seal(log: AuditLog, control: ControlPlane) -> None:
    """An attacker who edits entry 5 and recomputes every later hash still fails the seals."""
    with control.engine.connect() as con:
        rows = [
            dict(r) for r in con.execute(sa.text("SELECT * FROM audit_log ORDER BY seq")).mappings()
        ]
    statements, params = [], {}
    prev = rows[3]["hash"]
    for row in rows[4:]:
        if row["seq"] == 5:
            row["username"] = "someone-else"
        row["prev_hash"] = prev
        row["hash"] = entry_hash(row)
        prev = row["hash"]
        n = row["seq"]
        statements.append(
            f"UPDATE audit_log SET username = :u{n}, prev_hash = :p{n}, hash = :h{n} WHERE seq = {n}"
        )
        params.update({f"u{n}": row["username"], f"p{n}": row["prev_hash"], f"h{n}": row["hash"]})
    # prev_hash is unique: clear the old values first so the rewrite itself is accepted.
    tamper(
        control,
        "UPDATE audit_log SET prev_hash = 'x' || seq WHERE seq >= 5",
        *statements,
        params=params,
    )
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 10)
    assert "seal" in (result.problem or "")


def test_truncation_detected(log: AuditLog, control: ControlPlane) -> None:
    tamper(control, "DELETE FROM audit_log WHERE seq >= 18")
    result = log.verify()
    assert not result.ok
    assert "sealed" in (result.problem or "")


def test_forged_seal_detected(log: AuditLog, control: ControlPlane) -> None:
    with control.engine.begin() as con:
        con.execute(sa.text("UPDATE audit_anchors SET seal = :s WHERE seq = 10"), {"s": "0" * 64})
    result = log.verify()
    assert not result.ok and "forged" in (result.problem or "")


def test_concurrent_writers_never_fork_the_chain(control: ControlPlane) -> None:
    # Two AuditLog objects stand for two server processes: no shared in-process lock.
    logs = [AuditLog(control, KEY, anchor_every=7), AuditLog(control, KEY, anchor_every=7)]

    def write(log: AuditLog, n: int) -> None:
        for i in range(n):
            log.record("read", "allowed", username=f"w{i}")

    threads = [threading.Thread(target=write, args=(logs[i % 2], 15)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = logs[0].verify()
    assert result.ok, result
    assert result.entries == 60


def test_group_commit_returns_each_caller_its_own_committed_entry(control: ControlPlane) -> None:
    """Concurrent callers of one log share commits; each gets back its own entry, committed."""
    log = AuditLog(control, KEY, anchor_every=5)
    got: dict[str, list[int]] = {}

    def write(name: str) -> None:
        seqs = []
        for i in range(12):
            entry = log.record("search", "allowed", username=name, detail={"i": i})
            assert entry.username == name and json.loads(entry.detail) == {"i": i}
            seqs.append(entry.seq)
        got[name] = seqs

    threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(itertools.chain.from_iterable(got.values())) == list(range(1, 73))
    with control.session() as s:
        rows = dict(s.execute(sa.text("SELECT seq, username FROM audit_log")).all())
    assert all(rows[seq] == name for name, seqs in got.items() for seq in seqs)
    assert all(seqs == sorted(seqs) for seqs in got.values())
    result = log.verify()
    assert result.ok and result.entries == 72, result


def test_search_and_export(log: AuditLog) -> None:
    found = log.search(record_key="rk7")
    assert sorted(e.seq for e in found) == [6, 7]
    assert [e.seq for e in log.search(nominal_id="N3")] == [3]
    out = io.StringIO()
    assert log.export(out) == 25
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))
