"""Run the hub's uvicorn server with memory tracing, for ``benchmarks/soak.py --trace DIR``.

    python benchmarks/traced_server.py DIR <uvicorn arguments>

A benchmark tool only: the server itself has no debug hook. It runs uvicorn; the first
``SIGUSR1`` starts ``tracemalloc`` (six frames; from then on the server runs slower),
and each ``SIGUSR1`` writes ``DIR/snap-N.pickle`` (a tracemalloc snapshot) and
``DIR/snap-N.json`` (RSS, threads, live Python objects by type, traced memory). What a
late snapshot holds is what was allocated since tracing began and is still alive. On ``SIGUSR2`` it calls glibc's ``malloc_trim(0)`` and records
RSS before and after in ``DIR/trim-N.json``: memory that comes back is freed memory the
allocator was keeping, not live objects.

Every snapshot also records glibc's heap statistics (``mallinfo2``): ``heap_live_mb``
is what is allocated with ``malloc`` and not freed (Python's large objects, SQLite,
DuckDB's C++ objects; not DuckDB's buffer pool or Arrow, which have their own
allocators), ``heap_free_mb`` what the heaps keep free. With
``NOMINAL_TRACE_PYTHON=0`` tracemalloc is never started: the snapshots then cost
nothing between signals and record only these figures, so the live native heap can be
followed under full load.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import signal
import sys
import threading
import tracemalloc
from pathlib import Path
from types import FrameType


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def heap_mb() -> dict[str, float]:
    """glibc's heaps: live (allocated, not freed), free but kept, and mmapped blocks, in MB."""
    libc = ctypes.CDLL("libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        return {}
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {
        "heap_live_mb": round((info.uordblks + info.hblkhd) / 2**20, 2),
        "heap_free_mb": round(info.fordblks / 2**20, 2),
        "heap_arena_mb": round(info.arena / 2**20, 2),
        "heap_mmapped_mb": round(info.hblkhd / 2**20, 2),
    }


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    counter = {"snap": 0, "trim": 0}
    python = os.environ.get("NOMINAL_TRACE_PYTHON", "1") != "0"

    def snap(_signum: int, _frame: FrameType | None) -> None:
        n = counter["snap"]
        counter["snap"] += 1
        if not python:
            heap = {"rss_mb": round(rss_mb(), 1), "threads": threading.active_count(), **heap_mb()}
            (out / f"heap-{n}.json").write_text(json.dumps(heap))
            return
        if not tracemalloc.is_tracing():
            tracemalloc.start(6)
        gc.collect()
        tracemalloc.take_snapshot().dump(str(out / f"snap-{n}.pickle"))
        types = collections.Counter(type(o).__name__ for o in gc.get_objects())
        current, peak = tracemalloc.get_traced_memory()
        info: dict[str, object] = {
            "rss_mb": round(rss_mb(), 1),
            "threads": threading.active_count(),
            "traced_mb": round(current / 2**20, 1),
            "traced_peak_mb": round(peak / 2**20, 1),
            "objects": dict(types.most_common(40)),
            **heap_mb(),
        }
        if "pyarrow" in sys.modules:  # Arrow buffers live outside Python's heap
            pa = sys.modules["pyarrow"]
            info["arrow_mb"] = round(pa.total_allocated_bytes() / 2**20, 1)
            info["arrow_pool"] = pa.default_memory_pool().backend_name
        (out / f"snap-{n}.json").write_text(json.dumps(info))

    def trim(_signum: int, _frame: FrameType | None) -> None:
        n = counter["trim"]
        counter["trim"] += 1
        before = rss_mb()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        info = {"rss_mb_before": round(before, 1), "rss_mb_after": round(rss_mb(), 1)}
        (out / f"trim-{n}.json").write_text(json.dumps(info))

    signal.signal(signal.SIGUSR1, snap)
    signal.signal(signal.SIGUSR2, trim)
    import uvicorn.main

    sys.argv = ["uvicorn", *sys.argv[2:]]
    uvicorn.main.main()


if __name__ == "__main__":
    main()
