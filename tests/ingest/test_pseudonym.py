"""The SQL HMAC is the real HMAC-SHA256 (checked against Python's hmac module)."""

from __future__ import annotations

import hashlib
import hmac

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from nominal.engines.duck import sql_literal
from nominal.ingest.pseudonym import hmac_sql, pseudonym


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
