"""The server process's native heap: freed pages given back, optionally fewer malloc arenas.

Under sustained load (``benchmarks/soak.py``) the server's resident memory creeps up
while the live Python objects stay flat (tracemalloc). The RSS split by mapping shows
the growth is in glibc's malloc heaps (the main heap and the per-thread arenas), not in
DuckDB's own allocator or Python's object arenas, which stay flat. glibc gives each
thread that finds its arena busy a new one, up to eight per core; the anyio worker
threads that run the sync endpoints (up to 40) spread freed chunks over up to sixteen
heaps, and a heap only returns memory from its top (134 of 295 MB was free but kept,
read with ``mallinfo2`` in a soaked server). Trimming returns that; the slower creep
was live memory a long-lived DuckDB connection kept per query, now bounded by renewing
it (:mod:`nominal.web.lake`; docs/security.md, "Measured").
Two settings, applied when the server starts:

* a daemon thread that calls ``malloc_trim(0)`` every ``$NOMINAL_MALLOC_TRIM_SECONDS``
  (default 30; 0 switches it off), which hands the free pages inside every arena back
  to the kernel, not only those at an arena's top;
* ``mallopt(M_ARENA_MAX, n)`` when ``$NOMINAL_MALLOC_ARENAS`` is set (default 0: glibc's
  own limit), the programmatic form of ``MALLOC_ARENA_MAX``, which would have to be in
  the environment before the process starts. It takes effect while glibc has made
  fewer arenas than its test threshold (eight on 64-bit), so :func:`tune` is called
  from the app factory, before the request threads exist. Off by default: in two
  paired soaks on the busy 2-core machine two arenas lowered RSS by about 45 MB but
  served 22-25 % fewer requests (threads queueing for the arena locks), and the slow
  creep went on (docs/security.md, "Measured").

Neither changes what the server computes. Other C libraries (glibc-less systems, musl)
have neither function; then nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ARENAS_ENV = "NOMINAL_MALLOC_ARENAS"
TRIM_ENV = "NOMINAL_MALLOC_TRIM_SECONDS"
DEFAULT_ARENAS = 0  # glibc's own limit (eight per core): see the module docstring
DEFAULT_TRIM_SECONDS = 30.0
M_ARENA_MAX = -8  # glibc malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, if this process runs on it (``mallopt`` and ``malloc_trim`` are glibc's)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def limit_arenas(arenas: int) -> bool:
    """At most ``arenas`` malloc arenas from now on; False where glibc is not there."""
    libc = _glibc()
    return bool(libc is not None and arenas > 0 and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def trim() -> bool:
    """Give the free pages of every malloc arena back to the kernel (``malloc_trim(0)``).

    True when glibc released memory, False when there was none to release or no glibc.
    """
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


@dataclass
class Trimmer:
    """A daemon thread calling :func:`trim` every ``seconds`` until :meth:`stop`."""

    seconds: float
    trims: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Trimmer:
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            trim()
            self.trims += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _number(env: str, default: float) -> float:
    raw = os.environ.get(env, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        log.warning("ignoring %s=%r: not a number", env, raw)
        return default


def tune() -> None:
    """Limit the arenas if ``$NOMINAL_MALLOC_ARENAS`` says so; called by the server's factory."""
    arenas = int(_number(ARENAS_ENV, DEFAULT_ARENAS))
    if arenas > 0 and not limit_arenas(arenas):
        log.info("malloc arenas not limited: not glibc")


def trimmer() -> Trimmer | None:
    """A started :class:`Trimmer` (``$NOMINAL_MALLOC_TRIM_SECONDS``), None when off."""
    seconds = _number(TRIM_ENV, DEFAULT_TRIM_SECONDS)
    if seconds <= 0 or _glibc() is None:
        return None
    return Trimmer(seconds).start()
