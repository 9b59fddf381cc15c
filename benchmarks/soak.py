"""Soak the real server: search, person view and dashboard under sustained concurrent load.

    python benchmarks/soak.py [--seconds 600] [--concurrency 16] [--people 400] [--keep DIR]
                              [--kinds search,person,dashboard] [--trace DIR | --heap DIR]

Builds a linked synthetic town (or uses ``--keep DIR`` if one is there), starts
``uvicorn`` in a subprocess on it (the real server, one worker) and drives it with an
httpx asyncio generator: each virtual user loops over a search by name (``/api/search``),
a person view (``/api/people/{id}``) and the cohort dashboard (``/api/cohorts``), with
an API token for a practitioner covered by a live agreement. It prints requests per
second held, p50/p95/p99 latency, errors (any status other than 200, or a transport
error; target zero) and the server's RSS memory, sampled every 5 seconds: start and
end, the means of the first and last 20 samples and a least-squares slope (MB per
minute) over each half of the run, and the second-half slope per 1000 requests served
(comparable across machine loads). A leak keeps a positive second-half slope; caches
filling to a bound rise early and then flatten.

The server's environment is this process's: ``NOMINAL_MALLOC_ARENAS=0
NOMINAL_MALLOC_TRIM_SECONDS=0`` runs it with glibc's default arenas and no periodic
``malloc_trim`` (``nominal.web.memory``), to compare with the defaults.

``--trace DIR`` runs the server under ``benchmarks/traced_server.py``: tracemalloc starts
after one minute, snapshots follow every two minutes and at the end, and the summary
adds the allocation sites that grew most and what ``malloc_trim`` gives back.
``--kinds person`` (or ``search``, ``dashboard``, any comma-separated subset) loops over
those requests only, to see which one grows. ``--heap DIR`` runs the same traced server
without tracemalloc and records glibc's heap (``mallinfo2``: live and free-but-kept) every
30 s and once idle; the summary adds the live heap series and its slope per half.
``tests/security/test_soak.py`` runs a 20-second version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("search", "person", "dashboard")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_split_mb(pid: int) -> dict[str, float]:
    """RSS by kind: anonymous (heaps, allocator caches) and file-backed (libraries, maps)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "RssShmem"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    def add(self, kind: str, seconds: float, ok: bool, detail: str) -> None:
        self.requests += 1
        self.latencies.setdefault(kind, []).append(seconds)
        if not ok:
            self.errors[detail] = self.errors.get(detail, 0) + 1


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def start_server(
    home: Path, database_url: str, port: int, trace: Path | None = None, python: bool = True
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOMINAL_HOME": str(home), "NOMINAL_DATABASE_URL": database_url,
           "NOMINAL_SEARCH_RATE_PER_MINUTE": "1000000",
           "NOMINAL_TRACE_PYTHON": "1" if python else "0"}  # fmt: skip
    # --trace: the same server under benchmarks/traced_server.py (tracemalloc, snapshots)
    launcher = (
        ["-m", "uvicorn"]
        if trace is None
        else [str(ROOT / "benchmarks" / "traced_server.py"), str(trace)]
    )
    proc = subprocess.Popen(
        [sys.executable, *launcher, "--factory", "nominal.web.serve:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 600  # a shared, loaded machine imports slowly
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    proc.kill()
    raise RuntimeError("server did not become healthy in 600 s")


async def drive(
    base: str, token: str, purpose: str, people: list[dict[str, str]], seconds: float,
    concurrency: int, on_tick: Any = None, kinds: tuple[str, ...] = KINDS,
) -> Stats:  # fmt: skip
    stats = Stats()
    stop = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def user(n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            while time.monotonic() < stop:
                p = rng.choice(people)
                for kind, url, params in (
                    ("search", "/api/search", {"purpose": purpose, "given_name": p["given_name"],
                                               "family_name": p["family_name"]}),
                    ("person", f"/api/people/{p['nominal_id']}", {"purpose": purpose}),
                    ("dashboard", "/api/cohorts", {"purpose": purpose}),
                ):  # fmt: skip
                    if kind not in kinds:
                        continue
                    t0 = time.perf_counter()
                    try:
                        r = await client.get(url, params=params)
                        ok, detail = r.status_code == 200, f"{kind} {r.status_code}"
                    except httpx.HTTPError as exc:
                        ok, detail = False, f"{kind} {type(exc).__name__}"
                    stats.add(kind, time.perf_counter() - t0, ok, detail)

    async def ticker() -> None:
        while time.monotonic() < stop:
            await asyncio.sleep(5)
            if on_tick:
                on_tick(stats)

    await asyncio.gather(ticker(), *(user(i) for i in range(concurrency)))
    return stats


def slope_mb_per_minute(times: list[float], values: list[float]) -> float:
    """Least-squares slope of ``values`` (MB) against ``times`` (seconds), in MB per minute."""
    if len(times) < 2:
        return 0.0
    mt, mv = statistics.fmean(times), statistics.fmean(values)
    var = sum((t - mt) ** 2 for t in times)
    if var == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in zip(times, values, strict=True)) / var * 60


def memory_summary(times: list[float], samples: list[float]) -> dict[str, Any]:
    """First-20 and last-20 sample means, and the fitted slope over each half of the run.

    A leak keeps a positive slope in the second half; caches filling to a bound rise early
    and then flatten (second-half slope near zero).
    """
    half = len(samples) // 2
    head, tail = samples[:20], samples[-20:]
    return {
        "rss_mb_first20_mean": round(statistics.fmean(head), 1) if head else 0.0,
        "rss_mb_last20_mean": round(statistics.fmean(tail), 1) if tail else 0.0,
        "rss_mb_per_min_first_half": round(slope_mb_per_minute(times[:half], samples[:half]), 2),
        "rss_mb_per_min_second_half": round(slope_mb_per_minute(times[half:], samples[half:]), 2),
        "rss_mb_max": round(max(samples), 1) if samples else 0.0,
    }


def trace_report(trace: Path, top: int = 15) -> str:
    """The allocation sites that grew most between the first and last tracemalloc snapshots."""
    import tracemalloc

    snaps = sorted(trace.glob("snap-*.pickle"), key=lambda p: int(p.stem.split("-")[1]))
    if len(snaps) < 2:
        return "trace: fewer than two snapshots"
    first, last = (tracemalloc.Snapshot.load(str(p)) for p in (snaps[0], snaps[-1]))
    lines = [f"trace: {snaps[0].name} -> {snaps[-1].name}, top {top} allocation sites by growth"]
    for stat in last.compare_to(first, "lineno")[:top]:
        lines.append(f"  {stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks  "
                     f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}")  # fmt: skip
    lines.append("by traceback (top 5):")
    for stat in last.compare_to(first, "traceback")[:5]:
        lines.append(f"  {stat.size_diff / 2**20:+8.2f} MB")
        lines.extend(f"      {frame.filename}:{frame.lineno}" for frame in stat.traceback)
    metas = sorted(trace.glob("snap-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    for meta in (metas[0], metas[-1]):
        info = json.loads(meta.read_text())
        lines.append(f"{meta.name}: RSS {info['rss_mb']} MB, traced {info['traced_mb']} MB, "
                     f"threads {info['threads']}")  # fmt: skip
    a, b = (json.loads(m.read_text())["objects"] for m in (metas[0], metas[-1]))
    grown = sorted(((b.get(k, 0) - a.get(k, 0), k) for k in b), reverse=True)[:8]
    lines.append("objects grown: " + ", ".join(f"{k} {d:+d}" for d, k in grown))
    for t in sorted(trace.glob("trim-*.json")):
        lines.append(f"{t.name}: {t.read_text()}")
    return "\n".join(lines)


def heap_summary(heap: Path) -> dict[str, Any]:
    """glibc's live heap (``mallinfo2``) every 30 s under load, the last one idle: the
    series and the fitted slope over each half of the loaded part."""
    files = sorted(heap.glob("heap-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    infos = [json.loads(p.read_text()) for p in files]
    if len(infos) < 3:
        return {"heap_live_mb": [i.get("heap_live_mb") for i in infos]}
    loaded, idle = infos[:-1], infos[-1]
    live = [float(i["heap_live_mb"]) for i in loaded]
    times = [30.0 * n for n in range(len(live))]
    half = len(live) // 2
    return {
        "heap_live_mb": live,
        "heap_free_mb": [i["heap_free_mb"] for i in loaded],
        "heap_live_mb_idle": idle["heap_live_mb"],
        "heap_live_mb_per_min_first_half": round(slope_mb_per_minute(times[:half], live[:half]), 2),
        "heap_live_mb_per_min_second_half": round(
            slope_mb_per_minute(times[half:], live[half:]), 2
        ),
        "threads": [i["threads"] for i in loaded],
    }


def soak(
    home: Path, database_url: str, token: str, purpose: str, seconds: float, concurrency: int,
    trace: Path | None = None, kinds: tuple[str, ...] = KINDS, heap: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run the server on ``home`` and load it; the figures as a dict."""
    from nominal.engines import duck
    from nominal.engines.lake import Lake

    con = duck.connect(Lake(home / "lake").require_current())
    people = [
        dict(zip(("nominal_id", "given_name", "family_name"), map(str, row), strict=True))
        for row in con.execute(
            "SELECT nominal_id, given_name, family_name FROM gold.nominals "
            "WHERE given_name IS NOT NULL AND family_name IS NOT NULL ORDER BY nominal_id LIMIT 200"
        ).fetchall()
    ]
    con.close()
    port = free_port()
    if heap is not None and trace is not None:
        raise ValueError("--heap and --trace are exclusive")
    server = start_server(home, database_url, port, trace or heap, python=heap is None)
    try:
        base = f"http://127.0.0.1:{port}"
        # warm up (index load, first queries) before the measured window
        asyncio.run(drive(base, token, purpose, people, 3, 2))
        rss_start = rss_mb(server.pid)
        split_start = rss_split_mb(server.pid)
        load_start = os.getloadavg()
        t0 = time.monotonic()
        samples, times, served = [rss_start], [0.0], [0.0]
        snapped = [-60.0]  # the first snapshot at one minute

        def tick(_stats: Stats) -> None:
            now = time.monotonic() - t0
            samples.append(rss_mb(server.pid))
            times.append(now)
            served.append(float(_stats.requests))
            # --trace: tracing (and a first snapshot) after one minute, then a snapshot
            # every two minutes
            if trace is not None and now >= 60 and now - snapped[0] >= 120:
                snapped[0] = now
                server.send_signal(signal.SIGUSR1)
            # --heap: glibc's heap statistics every 30 s (no tracemalloc)
            if heap is not None and now - snapped[0] >= 30:
                snapped[0] = now
                server.send_signal(signal.SIGUSR1)

        if heap is not None:
            snapped[0] = 0.0
            server.send_signal(signal.SIGUSR1)
        stats = asyncio.run(
            drive(base, token, purpose, people, seconds, concurrency, on_tick=tick, kinds=kinds)
        )  # fmt: skip
        split_loaded = rss_split_mb(server.pid)  # still under load: the last requests run
        rss_end = rss_mb(server.pid)
        load_end = os.getloadavg()
        time.sleep(10)  # idle: what the server keeps once its requests have finished
        rss_idle, split_idle = rss_mb(server.pid), rss_split_mb(server.pid)
        if heap is not None:  # the heap once idle
            server.send_signal(signal.SIGUSR1)
            time.sleep(2)
        if trace is not None:  # a last snapshot, then see what malloc_trim gives back
            server.send_signal(signal.SIGUSR1)
            time.sleep(15)
            server.send_signal(signal.SIGUSR2)
            time.sleep(3)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    every = [x for v in stats.latencies.values() for x in v]
    heap_figures = heap_summary(heap) if heap is not None else {}
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "kinds": list(kinds),
        "requests": stats.requests,
        "requests_per_second": round(stats.requests / seconds, 1),
        "p50_ms": round(pct(every, 0.50), 1),
        "p95_ms": round(pct(every, 0.95), 1),
        "p99_ms": round(pct(every, 0.99), 1),
        "by_kind": {
            k: {
                "n": len(v),
                "p50_ms": round(statistics.median(v) * 1000, 1),
                "p99_ms": round(pct(v, 0.99), 1),
            }
            for k, v in stats.latencies.items()
        },
        "errors": sum(stats.errors.values()),
        "error_kinds": stats.errors,
        "rss_mb_start": round(rss_start, 1),
        "rss_mb_end": round(rss_end, 1),
        "rss_mb_idle_10s": round(rss_idle, 1),
        "rss_split_start": split_start,
        "rss_split_end": split_loaded,
        "rss_split_idle_10s": split_idle,
        "rss_mb_samples": [round(x, 1) for x in samples],
        "rss_sample_seconds": [round(x, 1) for x in times],
        **memory_summary(times, samples),
        # the same slope against requests served: comparable between a quiet and a busy
        # machine, where the requests per minute differ tenfold
        "rss_mb_per_1000_requests_second_half": round(
            slope_mb_per_minute(served[len(served) // 2 :], samples[len(samples) // 2 :])
            / 60
            * 1000,
            3,
        ),
        # the machine is shared: its 1/5/15-minute load averages and core count
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "cpus": os.cpu_count(),
        **heap_figures,
    }


def _with_documents(town: Any, root: Path) -> None:
    """Ingest the town's case notes and match their mentions, so person views show them."""
    from nominal.ingest.api import ingest_paths
    from nominal.mentions import find_mentions

    documents = root / "synth" / "documents"
    if documents.is_dir() and any(documents.iterdir()):
        ingest_paths(town.home, [documents], contracts=root / "synth" / "contracts")
        found = find_mentions(town.home)
        print(f"documents: {found['documents']}, mentions matched: {found['matched']}")


def reuse_town(root: Path) -> Any:
    from web_town import Town

    from nominal.config import home as make_home
    from nominal.db import ControlPlane

    # the accounts search_governance.setup_governance made in that control plane
    users = {"practitioner": "pc.jones", "council": "sw.khan", "analyst": "an.lee"}
    return Town(make_home(root / "home"), ControlPlane(f"sqlite:///{root / 'control.db'}"), users)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--trace", type=Path, help="run the server under tracemalloc; "
                        "snapshots and the growth report go to this folder")  # fmt: skip
    parser.add_argument("--heap", type=Path, help="record glibc's live heap (mallinfo2) "
                        "every 30 s in this folder, without tracemalloc")  # fmt: skip
    parser.add_argument("--kinds", default=",".join(KINDS), help="the requests each virtual "
                        "user loops over, comma-separated (default: all three)")  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "security"))
    sys.path.insert(0, str(ROOT / "fuzz"))
    from web_town import PURPOSE, build_town, token  # the same town the web tests use

    root = args.keep or Path(tempfile.mkdtemp(prefix="nominal-soak-"))
    if (root / "home" / "lake" / "CURRENT").exists() and (root / "control.db").exists():
        town = reuse_town(root)  # built by an earlier --keep run
    else:
        town = build_town(root, people=args.people)
        _with_documents(town, root)
    auth = token(town, "practitioner")["Authorization"].split()[1]
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds: a comma-separated subset of {','.join(KINDS)}")
    figures = soak(
        town.home.root, town.control.url, auth, PURPOSE, args.seconds, args.concurrency,
        args.trace, kinds, args.heap,
    )  # fmt: skip
    print(f"soak {figures['seconds']:.0f}s x {figures['concurrency']} users: "
          f"{figures['requests_per_second']} req/s, p50 {figures['p50_ms']} ms, p95 "
          f"{figures['p95_ms']} ms, p99 {figures['p99_ms']} ms, errors {figures['errors']}, "
          f"RSS {figures['rss_mb_start']} -> {figures['rss_mb_end']} MB, load average "
          f"{figures['load_average_start'][0]} -> {figures['load_average_end'][0]} on "
          f"{figures['cpus']} cores")  # fmt: skip
    print(f"memory: mean of first 20 samples {figures['rss_mb_first20_mean']} MB, last 20 "
          f"{figures['rss_mb_last20_mean']} MB, max {figures['rss_mb_max']} MB; fitted slope "
          f"{figures['rss_mb_per_min_first_half']} MB/min over the first half, "
          f"{figures['rss_mb_per_min_second_half']} MB/min over the second half "
          f"({figures['rss_mb_per_1000_requests_second_half']} MB per 1000 requests); 10 s idle "
          f"after: {figures['rss_mb_idle_10s']} MB; split start {figures['rss_split_start']}, "
          f"end {figures['rss_split_end']}, idle {figures['rss_split_idle_10s']}")  # fmt: skip
    if args.trace is not None:
        print(trace_report(args.trace))
    if args.heap is not None:
        print(f"glibc live heap every 30 s: {figures['heap_live_mb']} MB; idle "
              f"{figures.get('heap_live_mb_idle')} MB; slope "
              f"{figures.get('heap_live_mb_per_min_first_half')} / "
              f"{figures.get('heap_live_mb_per_min_second_half')} MB/min (first/second half); "
              f"threads {figures.get('threads')}")  # fmt: skip
    print(json.dumps(figures))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
