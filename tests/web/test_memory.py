"""The server's native-heap settings (nominal.web.memory) on the real glibc allocator.

Each allocator check runs in a fresh Python process: the arena limit only takes effect
before glibc has made its first few arenas, and the test process has made them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nominal.config import home as make_home
from nominal.web import memory
from nominal.web.app import create_app

pytestmark = pytest.mark.skipif(memory._glibc() is None, reason="needs glibc's malloc")

# Twelve threads alive at once, each allocating (so each is given an arena), then
# glibc's own account of its arenas: malloc_info writes one <heap nr=...> per arena.
ARENAS_SCRIPT = """
import ctypes, json, os, sys, tempfile, threading
from nominal.web import memory
memory.tune()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(12)
def work():
    blocks = [libc.malloc(4096) for _ in range(64)]
    barrier.wait()
    for b in blocks:
        libc.free(b)
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads:
    t.start()
for t in threads:
    t.join()
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
info = open(path).read()
os.unlink(path)
print(json.dumps({"heaps": info.count("<heap nr=")}))
"""

# 100 MB in 1 KB blocks, all freed but the last (so the free space is not at the top of
# the heap, where free() itself would return it): resident until malloc_trim.
TRIM_SCRIPT = """
import ctypes, json
from nominal.web import memory
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
blocks = []
for _ in range(100_000):
    b = libc.malloc(1024)
    libc.memset(b, 1, 1024)
    blocks.append(b)
for b in blocks[:-1]:
    libc.free(b)
before = rss()
released = memory.trim()
print(json.dumps({"before": before, "after": rss(), "released": released}))
"""


def _run(script: str, **env: str) -> dict[str, float]:
    src = str(Path(memory.__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=120, check=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_tune_limits_the_malloc_arenas_when_asked() -> None:
    """By default twelve allocating threads get arenas of their own; with
    ``NOMINAL_MALLOC_ARENAS=2``, two in all."""
    assert _run(ARENAS_SCRIPT)["heaps"] > 4
    assert _run(ARENAS_SCRIPT, **{memory.ARENAS_ENV: "2"})["heaps"] <= 2


def test_trim_returns_freed_pages_to_the_kernel() -> None:
    figures = _run(TRIM_SCRIPT)
    assert figures["released"] is True
    assert figures["before"] - figures["after"] > 50, figures


def _trim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "malloc-trim"]


def test_trimmer_runs_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memory.TRIM_ENV, "0.05")
    trimmer = memory.trimmer()
    assert trimmer is not None
    deadline = time.monotonic() + 30
    while trimmer.trims < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    trimmer.stop()
    assert trimmer.trims >= 2
    assert not _trim_threads()
    monkeypatch.setenv(memory.TRIM_ENV, "0")
    assert memory.trimmer() is None


def test_served_app_trims_while_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's app runs the trimmer from start-up to shutdown; other apps do not."""
    monkeypatch.setenv(memory.TRIM_ENV, "30")
    home = make_home(tmp_path / "home")
    url = f"sqlite:///{tmp_path / 'control.db'}"
    with TestClient(create_app(home, database_url=url, warm=False, trim_native_memory=True)):
        assert len(_trim_threads()) == 1
    assert not _trim_threads()
    with TestClient(create_app(home, database_url=url, warm=False)):
        assert not _trim_threads()
