"""Keyed-HMAC pseudonyms computed inside DuckDB, so ten million rows never touch Python.

HMAC-SHA256 (RFC 2104) is ``H((K ^ opad) || H((K ^ ipad) || m))`` with the key padded
to the 64-byte block. The padded keys are constants of the run, so in SQL it is two
``sha256`` calls over BLOBs: the inner digest (hex) is turned back into bytes with
``unhex`` before the outer hash. The result is the same as Python's ``hmac`` module
(a test checks it), truncated to 32 hex characters (128 bits), which is plenty for
pseudonyms that must not collide within a hub and keeps the tables smaller.

The same HMAC is also available as a DuckDB function over whole Arrow columns
(:func:`register_hmac_function`), compiled either in C (:mod:`nominal.ingest.hmac_native`,
built once per machine, the SHA extensions where the processor has them; used for every
delivery when a C compiler is present) or with numba: the padded keys' compression
states are computed once, so each value costs two SHA-256 compressions instead of four.
Per million values: about 0.75 CPU-s in SQL, 0.44 with numba, 0.23 in C.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

BLOCK = 64
PSEUDONYM_CHARS = 32


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sql(key: bytes, message_sql: str, chars: int = PSEUDONYM_CHARS) -> str:
    """A DuckDB expression: the first ``chars`` hex digits of HMAC-SHA256(key, message).

    ``message_sql`` is a VARCHAR expression; it is hashed as its UTF-8 bytes.
    """
    inner, outer = _pads(key)
    inner_sql = f"unhex('{inner.hex()}')"
    outer_sql = f"unhex('{outer.hex()}')"
    expr = f"sha256({outer_sql} || unhex(sha256({inner_sql} || encode({message_sql}))))"
    return f"left({expr}, {int(chars)})" if chars < 64 else expr


def pseudonym(key: bytes, message: str, chars: int = PSEUDONYM_CHARS) -> str:
    """The same pseudonym computed in Python (for single values and for tests)."""
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()[:chars]


def record_message(dataset: str, source_id: str) -> str:
    """What a record's (or an event's) pseudonym is the HMAC of: ``dataset|id``."""
    return f"{dataset}|{source_id}"


# NOMINAL_COMPILED_HMAC: "auto" (default), "on", "numba" or "off" (the SQL form).
# Two compiled kernels compute the same HMAC over whole Arrow columns: the C one
# (nominal.ingest.hmac_native: built once per machine with the system C compiler, loaded
# in about a millisecond, SHA extensions where the processor has them) and the numba
# one (loading numba and its cached kernel costs about 1.5 CPU-seconds once per
# process). "auto" uses the C kernel for every delivery when it can be built; without
# a compiler it falls back to numba for a delivery of at least COMPILED_MIN_BYTES
# (about 2.6 million rows of a 19-column feed, near numba's break-even) or once this
# process has loaded it, else to the SQL form. "on" uses C, else numba; "numba" numba.
COMPILED_ENV = "NOMINAL_COMPILED_HMAC"
COMPILED_MIN_BYTES = 512 << 20


def _mode() -> str:
    mode = (os.environ.get(COMPILED_ENV) or "auto").strip().lower()
    if mode in ("off", "0", "false", "no"):
        return "off"
    if mode in ("on", "1", "true", "yes"):
        return "on"
    return "numba" if mode == "numba" else "auto"


def _numba_available() -> bool:
    try:
        import nominal.ingest._hmac_numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency (through shap)
        return False
    return True


def compiled_kernel(delivery_bytes: int) -> str | None:
    """Which compiled HMAC pseudonymises a delivery of this size: "c", "numba" or None."""
    import sys

    from nominal.ingest import hmac_native

    mode = _mode()
    if mode == "off":
        return None
    if mode in ("auto", "on") and hmac_native.available():
        return "c"
    loaded = "nominal.ingest._hmac_numba" in sys.modules
    if mode == "auto" and not loaded and delivery_bytes < COMPILED_MIN_BYTES:
        return None
    return "numba" if _numba_available() else None


def use_compiled(delivery_bytes: int) -> bool:
    """Whether ingest pseudonymises a delivery of this size with a compiled HMAC."""
    return compiled_kernel(delivery_bytes) is not None


def hmac_arrow(key: bytes, chars: int = PSEUDONYM_CHARS, kernel: str = "c") -> Callable[[Any], Any]:
    """A function from an Arrow text array to the array of its pseudonyms (NULL stays NULL).

    ``kernel`` is "c" (:mod:`nominal.ingest.hmac_native`) or "numba".
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if kernel == "c":
        from nominal.ingest import hmac_native as impl
    elif kernel == "numba":
        from nominal.ingest import _hmac_numba as impl  # type: ignore[no-redef]
    else:
        raise ValueError(f"unknown HMAC kernel {kernel!r}")
    if not 1 <= chars <= 64:
        raise ValueError("chars must be 1..64")
    block = (hashlib.sha256(key).digest() if len(key) > BLOCK else key).ljust(BLOCK, b"\x00")
    inner, outer = impl.padded_states(block)

    def apply(values: Any) -> Any:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
        n = len(values)
        offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
            values.offset : values.offset + n + 1
        ]
        data_buf = values.buffers()[2]
        data = (
            np.frombuffer(data_buf, dtype=np.uint8)
            if data_buf is not None
            else np.zeros(0, dtype=np.uint8)
        )
        digits = impl.hmac_hex(data, offsets, inner, outer, chars)
        result = pa.StringArray.from_buffers(
            n,
            pa.py_buffer(np.arange(0, (n + 1) * chars, chars, dtype=np.int32)),
            pa.py_buffer(digits),
        )
        if values.null_count:
            result = pc.if_else(values.is_null(), pa.scalar(None, pa.string()), result)
        return result

    return apply


def register_hmac_function(
    con: Any, key: bytes, name: str, chars: int = PSEUDONYM_CHARS, kernel: str = "c"
) -> str:
    """Register ``name(VARCHAR) -> VARCHAR``: the compiled HMAC, on a DuckDB connection."""
    from duckdb import sqltypes

    con.create_function(
        name,
        hmac_arrow(key, chars, kernel),
        [sqltypes.VARCHAR],
        sqltypes.VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    return name
