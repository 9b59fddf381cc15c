"""Search latency and throughput against the real server, with policy and audit on.

    .venv/bin/python benchmarks/search_load.py --town /tmp/nominal-search-quality \\
        --nominals 1000000 --rate 50 --seconds 60

1. A hub home with ``--nominals`` golden nominals: the linked synthetic town of
   ``benchmarks/search_quality.py`` (``--town``; its real gold tables and trained
   linkage model), plus synthetic nominals made by recombining the town's columns
   (given name with sex, family name, date of birth shifted by up to a year, address
   and postcode, a fresh NHS number; each with a record in one of the town's
   datasets) until there are ``--nominals`` rows. Building a real million-person
   town and linking it would take hours on two cores; recombining keeps the name,
   date and postcode distributions of the town, so blocking keys are as common as a
   real town of that size would make them.
2. The demo governance (``nominal.govern.demo.seed_demo``) and an API token for its
   practitioner, scoped to a purpose.
3. The real app as ``nominal serve`` runs it (``nominal.web.serve:app`` under uvicorn,
   ``--workers`` processes, default 2 for this 2-core machine) in a subprocess, warmed
   up (the first search of each worker reads the index the first one built and saved
   under the home, or builds it).
4. An open-loop load generator (asyncio + httpx): ``--rate`` searches a second for
   ``--seconds``, each sent on schedule whether or not earlier ones have answered,
   each a corrupted description of a real person of the town (typo, nickname, only
   the birth year or only the postcode sector). Prints p50, p95, p99, errors and the
   achieved rate; checks the audit log gained one entry per search.
5. Before each search phase, the same load on a trivial authenticated endpoint
   (``--baseline``, ``/api/me``: token check and a control-plane session, no search),
   so the ratio of search to the server's own floor is measured under the same machine
   load as the absolute figures; the 1-minute load average is sampled every second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from search_quality import KINDS, corrupt, truth_people

from nominal.config import Home
from nominal.config import home as make_home


def nhs_number(rng: random.Random) -> str:
    """A 10-digit number with a valid modulus-11 check digit."""
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def build_big_home(town: Path, target: Path, nominals: int, seed: int) -> Home:
    """A home whose gold tables hold the town's nominals plus recombined ones."""
    import shutil

    from nominal.engines import duck
    from nominal.engines.lake import Lake

    home = make_home(target).ensure()
    lake = Lake(home.lake)
    current = lake.current()
    if current is not None and current.summary.get("nominals") == nominals:
        return home
    source = make_home(town / "home")
    shutil.copytree(source.root / "models", home.root / "models", dirs_exist_ok=True)
    con = duck.connect(Lake(source.lake).require_current())
    nominals_t = con.sql("SELECT * FROM gold.nominals").to_arrow_table()
    records_t = con.sql("SELECT * FROM gold.nominal_records").to_arrow_table()
    extra = nominals - nominals_t.num_rows
    rng = np.random.default_rng(seed)
    py = random.Random(seed)
    n = nominals_t.num_rows
    t = time.perf_counter()

    def pick(column: str, idx: np.ndarray) -> pa.Array:
        return nominals_t.column(column).take(pa.array(idx))

    gi, fi, di, ai = (rng.integers(0, n, extra) for _ in range(4))
    dob = pick("date_of_birth", di).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    dob = dob + rng.integers(-365, 366, extra).astype("timedelta64[D]")
    ids = [f"X{i:09d}" for i in range(extra)]
    columns: dict[str, Any] = {}
    for name in nominals_t.column_names:
        if name == "nominal_id":
            columns[name] = pa.array(ids)
        elif name == "nominal_pseudo":
            columns[name] = pa.array(
                [f"{hash((seed, i)) & (2**64 - 1):032x}" for i in range(extra)]
            )
        elif name in ("given_name", "sex", "middle_names"):
            columns[name] = pick(name, gi)
        elif name == "family_name":
            columns[name] = pick(name, fi)
        elif name == "date_of_birth":
            columns[name] = pa.array(dob, pa.date32()).cast(nominals_t.schema.field(name).type)
        elif name in ("nhs_number",):
            columns[name] = pa.array([nhs_number(py) for _ in range(extra)])
        elif name in ("ni_number", "police_id", "pupil_number"):
            columns[name] = pa.nulls(extra, nominals_t.schema.field(name).type)
        else:
            columns[name] = pick(name, ai)
    big = pa.concat_tables([nominals_t, pa.table(columns, schema=nominals_t.schema)])
    datasets = records_t.column("dataset").to_numpy(zero_copy_only=False)
    chosen = datasets[rng.integers(0, len(datasets), extra)]
    extra_records = pa.table(
        {
            "record_key": pa.array([f"x{i:031d}" for i in range(extra)]),
            "nominal_id": pa.array(ids),
            "dataset": pa.array(chosen.tolist()),
        }
    )
    agency_of = dict(
        zip(
            records_t.column("dataset").to_pylist(),
            records_t.column("agency").to_pylist(),
            strict=True,
        )
    )
    extra_records = extra_records.append_column(
        "agency", pa.array([agency_of[d] for d in chosen.tolist()])
    )
    for name in records_t.column_names:
        if name not in extra_records.column_names:
            extra_records = extra_records.append_column(
                name, pa.nulls(extra, records_t.schema.field(name).type)
            )
    all_records = pa.concat_tables(
        [records_t, extra_records.select(records_t.column_names).cast(records_t.schema)]
    )
    with lake.transaction("search-load-town") as tx:
        tx.replace("gold.nominals", [tx.write_arrow("gold.nominals", big)])
        tx.replace("gold.nominal_records", [tx.write_arrow("gold.nominal_records", all_records)])
        tx.commit({"nominals": nominals, "source": str(town)})
    print(f"wrote {big.num_rows:,} golden nominals in {time.perf_counter() - t:.0f} s")
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Connection:
    """One keep-alive HTTP/1.1 connection, with as little client-side work per request as
    possible: the load generator shares the two cores with the server it measures, and
    a full-featured client (httpx) cost more CPU per request than the search itself."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, target: str, headers: bytes) -> tuple[int, bytes, bytes]:
        """(status, body, Server-Timing header value)."""
        self.writer.write(b"GET " + target.encode() + b" HTTP/1.1\r\n" + headers)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        timing = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lowered = name.lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"server-timing":
                timing = value.strip()
        body = await self.reader.readexactly(length) if length else b""
        return status, body, timing

    def close(self) -> None:
        self.writer.close()


async def run_load(
    base: str, token: str, purpose: str, queries: list[dict[str, str]], rate: float,
    seconds: float, path: str = "/api/search",
) -> tuple[list[float], list[str], float, list[float]]:  # fmt: skip
    """Open-loop load on ``path``; (latencies, errors, elapsed, 1-minute load averages).

    Each request is sent at its scheduled time on an idle keep-alive connection (a new
    one if all are busy), whether or not earlier requests have been answered.
    """
    from urllib.parse import urlencode, urlsplit

    where = urlsplit(base)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    headers = (f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
               "Accept: application/json\r\n\r\n").encode()  # fmt: skip
    idle: list[Connection] = []
    opened: list[Connection] = []
    latencies: list[float] = []
    errors: list[str] = []
    loads: list[float] = []
    total = int(rate * seconds)
    phases = PHASES[path] = defaultdict(list)

    async def one(i: int) -> None:
        params = (
            {"purpose": purpose, "limit": "10", **queries[i % len(queries)]}
            if path == "/api/search"
            else {}
        )
        target = f"{path}?{urlencode(params)}" if params else path
        started = time.perf_counter()
        conn = idle.pop() if idle else None
        try:
            try:
                if conn is None:
                    conn = Connection(*await asyncio.open_connection(host, port))
                    opened.append(conn)
                status, body, timing = await asyncio.wait_for(conn.get(target, headers), timeout=60)
            except (asyncio.IncompleteReadError, ConnectionError):
                # the server closed an idle keep-alive connection: once more on a new one
                conn = Connection(*await asyncio.open_connection(host, port))
                opened.append(conn)
                status, body, timing = await asyncio.wait_for(conn.get(target, headers), timeout=60)
        except Exception as exc:
            errors.append(repr(exc))
            if conn is not None:
                conn.close()
            return
        idle.append(conn)
        if status != 200:
            errors.append(f"{status}: {body[:200]!r}")
            return
        latencies.append(time.perf_counter() - started)
        for part in timing.decode().split(","):
            name, _, dur = part.strip().partition(";dur=")
            if dur:
                phases[name].append(float(dur))

    tasks = []
    t0 = time.perf_counter()
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if i % max(1, int(rate)) == 0:
            loads.append(os.getloadavg()[0])
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for conn in opened:
        conn.close()
    return latencies, errors, elapsed, loads


# Server-Timing phases (ms) of the last run on each path, for report().
PHASES: dict[str, dict[str, list[float]]] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--town", type=Path, default=Path("/tmp/nominal-search-quality"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/nominal-search-load"))
    parser.add_argument("--nominals", type=int, default=1_000_000)
    parser.add_argument(
        "--rate", type=float, action="append", help="searches a second (repeat for phases)"
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--baseline", default="/api/me",
        help="a trivial authenticated endpoint loaded at the same rate before each search "
             "phase, for the ratio of search to the server's own floor ('' to skip)",
    )  # fmt: skip
    parser.add_argument(
        "--switch-ms", type=float, default=None,
        help="the server's GIL switch interval in ms (default: the server's own)",
    )  # fmt: skip
    args = parser.parse_args()
    rates = args.rate or [50.0]
    home = build_big_home(args.town, args.work / "home", args.nominals, args.seed)

    import sqlalchemy as sa

    from nominal.db import ControlPlane
    from nominal.govern.admin import get_purpose, get_user
    from nominal.govern.auth import issue_token
    from nominal.govern.demo import seed_demo
    from nominal.govern.models import AuditEntry

    accounts = seed_demo(home, args.town / "synth" / "contracts")
    practitioner = accounts.by_role("practitioner").username
    purpose = "safeguarding_children"
    control = ControlPlane(home.database_url)
    with control.session() as s:
        token = issue_token(s, get_user(s, practitioner), get_purpose(s, purpose), days=1).token
    people = truth_people(args.town / "synth", make_home(args.town / "home"))
    people = [
        p for p in people if p["given_name"] and p["family_name"] and p["dob"] and p["postcode"]
    ]
    rng = random.Random(args.seed)
    from nominal.link.standardise import nickname_rows

    nicknames: dict[str, list[str]] = defaultdict(list)
    for name, canonical in nickname_rows():
        if name != canonical:
            nicknames[canonical].append(name)
    queries = []
    for i in range(2000):
        person = rng.choice(people)
        kind = KINDS[i % len(KINDS)]
        if kind == "nickname" and person["given_name"].lower() not in nicknames:
            kind = "typo"
        queries.append(corrupt(person, kind, nicknames, rng))

    port = free_port()
    # The hub's own entry point (``nominal serve``): the app factory under uvicorn workers.
    launcher = (
        "from nominal.web.commands import run_server; "
        f"run_server('127.0.0.1', {port}, {args.workers}, log_level='warning')"
    )
    # One token drives the whole load: lift the per-user search limit for the benchmark.
    env = {
        **os.environ,
        "NOMINAL_HOME": str(home.root),
        "NOMINAL_SECURE_COOKIES": "0",
        "NOMINAL_SEARCH_RATE_PER_MINUTE": "1000000",
        **({"NOMINAL_GIL_SWITCH_MS": str(args.switch_ms)} if args.switch_ms else {}),
    }
    server_log = open(args.work / "server.log", "w")  # noqa: SIM115 - open for the server's life
    server = subprocess.Popen(
        [sys.executable, "-c", launcher], env=env, stdout=server_log, stderr=server_log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(600):
            try:
                httpx.get(f"{base}/sign-in", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        t = time.perf_counter()
        # Concurrent first searches so that every worker loads (or builds) its index.
        _, warm_errors, _, _ = asyncio.run(
            run_load(base, token, purpose, queries, 2 * args.workers, 4)
        )
        print(f"server up ({args.workers} workers); index ready in every worker after "
              f"{time.perf_counter() - t:.0f} s; warm-up errors {len(warm_errors)} "
              f"{sorted(set(warm_errors))[:1]}", flush=True)  # fmt: skip
        asyncio.run(run_load(base, token, purpose, queries[1:], 10, 5))  # warm the threads
        for rate in rates:
            if args.baseline:
                cpu = server_cpu(server.pid)
                latencies, errors, elapsed, loads = asyncio.run(
                    run_load(base, token, purpose, queries, rate, args.seconds, args.baseline)
                )
                floor = report(f"GET {args.baseline} (the floor: authentication, no search)",
                               rate, args.seconds, latencies, errors, elapsed, loads)  # fmt: skip
                print(f"server CPU per request: {cpu_per_request(server.pid, cpu, latencies)}")
            with control.session() as s:
                before = s.scalar(sa.select(sa.func.max(AuditEntry.seq))) or 0
            cpu = server_cpu(server.pid)
            latencies, errors, elapsed, loads = asyncio.run(
                run_load(base, token, purpose, queries, rate, args.seconds)
            )
            cpu_note = cpu_per_request(server.pid, cpu, latencies)
            with control.session() as s:
                after = s.scalar(sa.select(sa.func.max(AuditEntry.seq))) or 0
            what = f"GET /api/search over {args.nominals:,} golden nominals (policy and audit on)"
            found = report(what, rate, args.seconds, latencies, errors, elapsed, loads)
            print(f"audit entries written during the search phase: {after - before}")
            print(f"server CPU per request: {cpu_note}")
            print_phases("/api/search")
            if args.baseline and floor and found:
                print("search / floor: " + "  ".join(
                    f"{k} {found[k] / floor[k]:.1f}x" for k in ("p50", "p95", "p99")
                ), flush=True)  # fmt: skip
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # workers stuck in requests: stop them hard
            subprocess.run(["pkill", "-KILL", "-P", str(server.pid)], check=False)
            server.kill()
            server.wait(timeout=30)


def report(
    what: str, rate: float, seconds: float, latencies: list[float], errors: list[str],
    elapsed: float, loads: list[float],
) -> dict[str, float]:  # fmt: skip
    sent = int(rate * seconds)
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    print(f"\n{what}: {sent} requests offered at {rate:g}/s for {seconds:g} s")
    print(f"completed {len(latencies)}, errors {len(errors)}, "
          f"achieved {len(latencies) / elapsed:.1f}/s over {elapsed:.0f} s; "
          f"load average {min(loads, default=0):.1f}-{max(loads, default=0):.1f} "
          f"(mean {statistics.mean(loads or [0]):.1f}) on {os.cpu_count()} cores")  # fmt: skip
    for e in sorted(set(errors))[:3]:
        print("error:", e[:200])
    if not latencies:
        return {}
    figures = {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99)}
    print(f"latency ms: p50 {figures['p50']:.1f}  p95 {figures['p95']:.1f}  "
          f"p99 {figures['p99']:.1f}  max {latencies[-1] * 1000:.1f}  "
          f"mean {statistics.mean(latencies) * 1000:.1f}", flush=True)  # fmt: skip
    return figures


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server and its worker processes."""
    import psutil

    parent = psutil.Process(pid)
    total = 0.0
    for proc in [parent, *parent.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def cpu_per_request(pid: int, before: float, latencies: list[float]) -> str:
    """The server's CPU time since ``before`` per completed request: what a request costs
    however busy the shared machine is."""
    used = server_cpu(pid) - before
    return f"{used * 1000 / max(1, len(latencies)):.1f} ms ({used:.1f} s for {len(latencies)})"


def print_phases(path: str) -> None:
    """Median and p95 of each Server-Timing phase the server reported on ``path``."""
    phases = PHASES.get(path) or {}
    if not phases:
        return
    parts = []
    for name, values in phases.items():
        values.sort()
        parts.append(f"{name} {statistics.median(values):.1f}/"
                     f"{values[min(len(values) - 1, int(0.95 * len(values)))]:.1f}")  # fmt: skip
    print("server-side phases, ms median/p95: " + "  ".join(parts), flush=True)


if __name__ == "__main__":
    main()
