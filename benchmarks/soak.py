"""Soak the real server: search, person view and dashboard under sustained concurrent load.

    python benchmarks/soak.py [--seconds 600] [--concurrency 16] [--people 400] [--keep DIR]

Builds a linked synthetic town (or uses ``--keep DIR`` if one is there), starts
``uvicorn`` in a subprocess on it (the real server, one worker) and drives it with an
httpx asyncio generator: each virtual user loops over a search by name (``/api/search``),
a person view (``/api/people/{id}``) and the cohort dashboard (``/api/cohorts``), with
an API token for a practitioner covered by a live agreement. It prints requests per
second held, p50/p95/p99 latency, errors (any status other than 200, or a transport
error; target zero) and the server's RSS memory at start, middle and end (a leak shows
as growth). ``tests/security/test_soak.py`` runs a 20-second version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


def start_server(home: Path, database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOMINAL_HOME": str(home), "NOMINAL_DATABASE_URL": database_url,
           "NOMINAL_SEARCH_RATE_PER_MINUTE": "1000000"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "nominal.web.serve:app",
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
    concurrency: int, on_tick: Any = None,
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


def soak(
    home: Path, database_url: str, token: str, purpose: str, seconds: float, concurrency: int
) -> dict[str, Any]:
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
    server = start_server(home, database_url, port)
    try:
        base = f"http://127.0.0.1:{port}"
        # warm up (index load, first queries) before the measured window
        asyncio.run(drive(base, token, purpose, people, 3, 2))
        rss_start = rss_mb(server.pid)
        load_start = os.getloadavg()
        samples = [rss_start]
        stats = asyncio.run(
            drive(base, token, purpose, people, seconds, concurrency,
                  on_tick=lambda _s: samples.append(rss_mb(server.pid)))
        )  # fmt: skip
        rss_end = rss_mb(server.pid)
        load_end = os.getloadavg()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    every = [x for v in stats.latencies.values() for x in v]
    return {
        "seconds": seconds,
        "concurrency": concurrency,
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
        "rss_mb_samples": [round(x, 1) for x in samples],
        # the machine is shared: its 1/5/15-minute load averages and core count
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in load_end],
        "cpus": os.cpu_count(),
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
    figures = soak(town.home.root, town.control.url, auth, PURPOSE, args.seconds, args.concurrency)
    print(f"soak {figures['seconds']:.0f}s x {figures['concurrency']} users: "
          f"{figures['requests_per_second']} req/s, p50 {figures['p50_ms']} ms, p95 "
          f"{figures['p95_ms']} ms, p99 {figures['p99_ms']} ms, errors {figures['errors']}, "
          f"RSS {figures['rss_mb_start']} -> {figures['rss_mb_end']} MB, load average "
          f"{figures['load_average_start'][0]} -> {figures['load_average_end'][0]} on "
          f"{figures['cpus']} cores")  # fmt: skip
    print(json.dumps(figures))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
