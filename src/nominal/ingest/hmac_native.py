"""The HMAC-SHA256 pseudonym kernel in C (``_hmac_native.c``), built on first use.

The C file is compiled once per machine with the system C compiler (``$CC``, else
``cc``) into a shared library named by a hash of its source and flags, kept in
``NOMINAL_NATIVE_CACHE`` (default ``~/.cache/nominal``), and loaded with ``ctypes``:
about a millisecond, against about 1.5 CPU-seconds to load numba and its cached
kernel. On x86-64 processors with the SHA extensions the compression uses them. Where
no compiler is found the caller falls back (numba, then the SQL form), so the kernel
is an accelerator, never a requirement.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = Path(__file__).with_name("_hmac_native.c")
CACHE_ENV = "NOMINAL_NATIVE_CACHE"
# Set to 1 to use the portable compression even where the SHA extensions exist (tests).
PORTABLE_ENV = "NOMINAL_HMAC_PORTABLE"

_lib: Any = None
_failed: str | None = None


def _cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nominal"


def _build(flags: list[str]) -> Path:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise OSError("no C compiler (cc) found")
    source = SOURCE.read_bytes()
    tag = hashlib.sha256(source + " ".join([compiler, *flags]).encode()).hexdigest()[:16]
    folder = _cache_dir()
    target = folder / f"nominal_hmac_{tag}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name and renamed: a concurrent build never loads half a file.
    fd, tmp = tempfile.mkstemp(prefix=".nominal_hmac_", suffix=".so", dir=folder)
    os.close(fd)
    try:
        subprocess.run(  # noqa: S603 - our own source, the configured compiler
            [compiler, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load() -> Any:
    """The loaded library, building it if needed; raises ``OSError`` if it cannot be."""
    global _lib, _failed
    if _lib is not None:
        return _lib
    if _failed is not None:
        raise OSError(_failed)
    attempts = [["-O2"]]
    if platform.machine().lower() in ("x86_64", "amd64"):
        attempts.insert(0, ["-O2", "-DNOMINAL_SHA_NI"])
    error = "not built"
    for flags in attempts:
        try:
            lib = ctypes.CDLL(str(_build(flags)))
        except (OSError, subprocess.SubprocessError) as exc:
            error = f"the C pseudonym kernel could not be built: {exc}"
            continue
        u8, u32, i32 = (np.ctypeslib.ndpointer(t, flags="C_CONTIGUOUS") for t in
                        (np.uint8, np.uint32, np.int32))  # fmt: skip
        lib.nominal_hmac_hex.argtypes = [
            u8, i32, ctypes.c_int64, u32, u32, ctypes.c_int32, u8, ctypes.c_int,
        ]  # fmt: skip
        lib.nominal_hmac_hex.restype = None
        lib.nominal_hmac_state.argtypes = [u8, u32, ctypes.c_int]
        lib.nominal_hmac_state.restype = None
        lib.nominal_hmac_uses_shani.argtypes = [ctypes.c_int]
        lib.nominal_hmac_uses_shani.restype = ctypes.c_int
        lib.nominal_space_at_boundary.argtypes = [
            ctypes.c_char_p, ctypes.c_int64, u8, ctypes.c_int,
        ]  # fmt: skip
        lib.nominal_space_at_boundary.restype = ctypes.c_int
        _lib = lib
        return lib
    _failed = error
    raise OSError(error)


def available() -> bool:
    """Whether the kernel is (or can be) built and loaded on this machine."""
    try:
        load()
    except OSError:
        return False
    return True


def _portable() -> int:
    return 1 if os.environ.get(PORTABLE_ENV, "").strip() in ("1", "on", "true", "yes") else 0


def uses_sha_extensions() -> bool:
    return bool(load().nominal_hmac_uses_shani(_portable()))


def padded_states(key_block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Compression states after the ipad and opad blocks of a 64-byte padded key."""
    lib = load()
    states = []
    for pad in (0x36, 0x5C):
        block = np.frombuffer(bytes(b ^ pad for b in key_block), dtype=np.uint8).copy()
        state = np.empty(8, dtype=np.uint32)
        lib.nominal_hmac_state(block, state, _portable())
        states.append(state)
    return states[0], states[1]


def hmac_hex(
    data: np.ndarray, offsets: np.ndarray, inner: np.ndarray, outer: np.ndarray, chars: int
) -> np.ndarray:
    """The hex HMACs of ``len(offsets) - 1`` values, ``chars`` bytes each, in one buffer."""
    n = offsets.shape[0] - 1
    out = np.empty(max(n * chars, 1), dtype=np.uint8)
    if data.shape[0] == 0:
        data = np.zeros(1, dtype=np.uint8)
    load().nominal_hmac_hex(
        np.ascontiguousarray(data), np.ascontiguousarray(offsets, dtype=np.int32), n,
        inner, outer, chars, out, _portable(),
    )  # fmt: skip
    return out[: n * chars]


def space_at_boundary(chunk: bytes, boundary: np.ndarray, before: int) -> bool:
    """Whether a space in ``chunk`` is next to a boundary byte (see the C function).

    ``boundary`` is a 256-entry ``uint8`` table; ``before`` the byte before ``chunk``.
    A space as the last byte is not judged here (the next byte is not known yet).
    """
    return bool(load().nominal_space_at_boundary(chunk, len(chunk), boundary, before))
