"""The SQL and compiled HMACs are the real HMAC-SHA256 (checked against Python's hmac)."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nominal.engines.duck import sql_literal
from nominal.ingest.pseudonym import (
    COMPILED_ENV,
    COMPILED_MIN_BYTES,
    hmac_arrow,
    hmac_sql,
    pseudonym,
    register_hmac_function,
    use_compiled,
)


def _sql(key: bytes, message: str, chars: int = 64) -> str:
    row = (
        duckdb.connect().execute("SELECT " + hmac_sql(key, sql_literal(message), chars)).fetchone()
    )
    assert row is not None
    return str(row[0])


def test_matches_python_hmac_for_fixed_vectors() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    assert _sql(b"Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    for key in (b"k", b"\x00" * 32, bytes(range(64)), bytes(range(100))):  # short, block, long
        for message in ("", "police_incidents|NPI00000001", "Wróblewska|ß"):
            assert _sql(key, message) == hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=1, max_size=130), message=st.text(max_size=80))
def test_matches_python_hmac_for_any_key_and_text(key: bytes, message: str) -> None:
    message = message.replace("\x00", "")
    assert _sql(key, message, 32) == pseudonym(key, message)


def test_vectorised_over_a_column() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    con = duckdb.connect()
    expr = hmac_sql(key, "'ds|' || id")
    rows = con.execute(
        f"SELECT id, {expr} FROM (SELECT 'R' || i AS id FROM range(500) t(i))"
    ).fetchall()
    assert all(h == pseudonym(key, f"ds|{i}") for i, h in rows)
    assert len({h for _, h in rows}) == 500


# -- the compiled HMAC (numba) ingest uses for large deliveries ------------------------
LENGTHS = (0, 1, 31, 55, 56, 63, 64, 65, 119, 120, 127, 128, 200)  # around block edges


def _compiled(key: bytes, messages: list[str | None], chars: int = 32) -> list[str | None]:
    con = duckdb.connect()
    register_hmac_function(con, key, "pseud", chars)
    con.execute("CREATE TABLE m (i INTEGER, s VARCHAR)")
    if messages:
        con.executemany("INSERT INTO m VALUES (?, ?)", list(enumerate(messages)))
    return [r[0] for r in con.execute("SELECT pseud(s) FROM m ORDER BY i").fetchall()]


def test_compiled_matches_python_hmac_at_every_block_edge() -> None:
    messages: list[str | None] = ["x" * n for n in LENGTHS]
    messages += ["what do ya want for nothing?", "Wróblewska|ß", "police_incidents|NPI01", None]
    for key in (b"Jefe", b"k", b"\x00" * 32, bytes(range(64)), bytes(range(100))):
        for chars in (32, 64):
            expected = [
                None if m is None else hmac.new(key, m.encode(), hashlib.sha256).hexdigest()[:chars]
                for m in messages
            ]
            assert _compiled(key, messages, chars) == expected


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=130), messages=st.lists(st.text(max_size=150), max_size=8)
)
def test_compiled_matches_python_hmac_for_any_key_and_text(key: bytes, messages: list[str]) -> None:
    messages = [m.replace("\x00", "") for m in messages]
    assert _compiled(key, messages) == [pseudonym(key, m) for m in messages]


def test_compiled_over_a_sliced_arrow_array() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    values = pa.array([f"ds|R{i}" if i % 7 else None for i in range(3000)])
    part = values.slice(1234, 700)  # a slice starts at an offset into the same buffers
    got = hmac_arrow(key)(part).to_pylist()
    assert got == [None if v is None else pseudonym(key, v) for v in part.to_pylist()]


def test_compiled_used_by_size_or_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMPILED_ENV, "off")
    assert not use_compiled(10 * COMPILED_MIN_BYTES)
    monkeypatch.setenv(COMPILED_ENV, "on")
    assert use_compiled(10)
    monkeypatch.setenv(COMPILED_ENV, "auto")
    assert use_compiled(COMPILED_MIN_BYTES)
