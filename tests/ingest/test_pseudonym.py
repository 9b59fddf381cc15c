"""The SQL and compiled HMACs are the real HMAC-SHA256 (checked against Python's hmac)."""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nominal.engines.duck import sql_literal
from nominal.ingest import hmac_native
from nominal.ingest.pseudonym import (
    COMPILED_ENV,
    COMPILED_MIN_BYTES,
    compiled_kernel,
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


# -- the compiled HMACs (C, numba) ingest registers as a DuckDB function ---------------
LENGTHS = (0, 1, 31, 55, 56, 63, 64, 65, 119, 120, 127, 128, 200)  # around block edges

# The C kernel with the SHA extensions (where the processor has them), the same C
# kernel's portable compression, and the numba kernel.
KERNELS = ("c", "c-portable", "numba")


@pytest.fixture(params=KERNELS)
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = str(request.param)
    if name.startswith("c"):
        # `make test` installs a C compiler (Debian's gcc) when there is none, so the C
        # kernel must build here; ingest's fallback without one is tested separately
        assert hmac_native.available(), "no C compiler (cc): `make c-compiler` installs gcc"
        monkeypatch.setenv(hmac_native.PORTABLE_ENV, "1" if name == "c-portable" else "0")
        return "c"
    return name


def _compiled(
    key: bytes, messages: list[str | None], chars: int = 32, kernel: str = "c"
) -> list[str | None]:
    con = duckdb.connect()
    register_hmac_function(con, key, "pseud", chars, kernel=kernel)
    con.execute("CREATE TABLE m (i INTEGER, s VARCHAR)")
    if messages:
        con.executemany("INSERT INTO m VALUES (?, ?)", list(enumerate(messages)))
    return [r[0] for r in con.execute("SELECT pseud(s) FROM m ORDER BY i").fetchall()]


def test_compiled_matches_python_hmac_at_every_block_edge(kernel: str) -> None:
    messages: list[str | None] = ["x" * n for n in LENGTHS]
    messages += ["what do ya want for nothing?", "Wróblewska|ß", "police_incidents|NPI01", None]
    for key in (b"Jefe", b"k", b"\x00" * 32, bytes(range(64)), bytes(range(100))):
        for chars in (32, 64):
            expected = [
                None if m is None else hmac.new(key, m.encode(), hashlib.sha256).hexdigest()[:chars]
                for m in messages
            ]
            assert _compiled(key, messages, chars, kernel) == expected


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=130), messages=st.lists(st.text(max_size=150), max_size=8)
)
def test_compiled_matches_python_hmac_for_any_key_and_text(key: bytes, messages: list[str]) -> None:
    messages = [m.replace("\x00", "") for m in messages]
    expected = [pseudonym(key, m) for m in messages]
    for kernel in ("c", "numba") if hmac_native.available() else ("numba",):
        assert _compiled(key, messages, kernel=kernel) == expected


@pytest.mark.skipif(not hmac_native.available(), reason="no C compiler")
def test_c_kernel_portable_and_sha_extensions_agree_on_random_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of random keys and texts (ASCII, accented, CJK, emoji; 0-300 bytes)."""
    rnd = random.Random(20261201)
    alphabet = "abcXYZ019 |-'" + "éßłŻ" + "漢字" + "\U0001f600"
    for _ in range(20):
        key = rnd.randbytes(rnd.choice((1, 20, 32, 63, 64, 65, 129)))
        values = ["".join(rnd.choices(alphabet, k=rnd.randrange(0, 120))) for _ in range(300)]
        expected = [pseudonym(key, v) for v in values]
        for portable in ("0", "1"):
            monkeypatch.setenv(hmac_native.PORTABLE_ENV, portable)
            assert hmac_arrow(key, kernel="c")(pa.array(values)).to_pylist() == expected


def test_compiled_over_a_sliced_arrow_array(kernel: str) -> None:
    key = b"0123456789abcdef0123456789abcdef"
    values = pa.array([f"ds|R{i}" if i % 7 else None for i in range(3000)])
    part = values.slice(1234, 700)  # a slice starts at an offset into the same buffers
    got = hmac_arrow(key, kernel=kernel)(part).to_pylist()
    assert got == [None if v is None else pseudonym(key, v) for v in part.to_pylist()]


def test_compiled_used_by_size_or_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMPILED_ENV, "off")
    assert not use_compiled(10 * COMPILED_MIN_BYTES)
    monkeypatch.setenv(COMPILED_ENV, "on")
    assert use_compiled(10)
    monkeypatch.setenv(COMPILED_ENV, "auto")
    assert use_compiled(COMPILED_MIN_BYTES)
    monkeypatch.setenv(COMPILED_ENV, "numba")
    assert compiled_kernel(10) == "numba"
    if hmac_native.available():
        # the C kernel loads in a millisecond, so auto and on use it at any size
        for mode in ("auto", "on"):
            monkeypatch.setenv(COMPILED_ENV, mode)
            assert compiled_kernel(10) == "c"
    monkeypatch.setenv(COMPILED_ENV, "off")
    assert compiled_kernel(10 * COMPILED_MIN_BYTES) is None


def test_without_a_compiler_auto_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No C compiler: auto keeps numba's size rule (SQL below it), nothing fails."""
    import sys

    monkeypatch.setattr(hmac_native, "_lib", None)
    monkeypatch.setattr(hmac_native, "_failed", None)
    monkeypatch.setenv(hmac_native.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not hmac_native.available()
    monkeypatch.setenv(COMPILED_ENV, "auto")
    if "nominal.ingest._hmac_numba" not in sys.modules:
        assert compiled_kernel(10) is None
    assert compiled_kernel(COMPILED_MIN_BYTES) == "numba"
    monkeypatch.setenv(COMPILED_ENV, "on")
    assert compiled_kernel(10) == "numba"


def test_c_kernel_pairs_of_short_values_and_single_long_ones(kernel: str) -> None:
    """Two values under 56 bytes are hashed side by side (SHA extensions); others alone.

    Every order of short and long values, odd and even counts, so a pair, a lone short
    value before a long one and a last unpaired value all come up.
    """
    key = b"side-by-side"
    lengths = (0, 1, 54, 55, 56, 57, 63, 64, 100)
    messages = [
        "v" * a + "|" + "w" * b for a in lengths for b in lengths
    ]  # 2..201 bytes, in every order
    for count in (1, 2, 3, len(messages) - 1, len(messages)):
        part = messages[:count]
        assert _compiled(key, list(part), kernel=kernel) == [pseudonym(key, m) for m in part]
