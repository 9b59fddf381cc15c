"""Keyed-HMAC pseudonyms computed inside DuckDB, so ten million rows never touch Python.

HMAC-SHA256 (RFC 2104) is ``H((K ^ opad) || H((K ^ ipad) || m))`` with the key padded
to the 64-byte block. The padded keys are constants of the run, so in SQL it is two
``sha256`` calls over BLOBs: the inner digest (hex) is turned back into bytes with
``unhex`` before the outer hash. The result is the same as Python's ``hmac`` module
(a test checks it), truncated to 32 hex characters (128 bits), which is plenty for
pseudonyms that must not collide within a hub and keeps the tables smaller.
"""

from __future__ import annotations

import hashlib
import hmac

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
