"""Time to first render of the demand dashboard and the map at a million people.

The gold tables for 1M people are built by **replication**: a synthetic town of
``--base`` people (default 20,000) is generated, linked by oracle
(``nominal.insight.oracle.gold_from_truth``) and copied ``--people / --base`` times
with every nominal, household, record and event id (and pseudonym) made unique per
copy, and every output area and ward too (the copies share their shapes), so a
million people live in fifty times the areas, as they would in a real region.
The peer is the same measurement on the base town itself, in the same run.

For each size and each of ``--runs`` runs, a fresh app is served by uvicorn and:

* **server**: the wall time of the first request for the page after start-up (cold:
  opening the lake, policy decisions, every query, rendering), then a second (warm).
  The app computes the commonest unfiltered dashboards in the background when it
  starts; ``--warm wait`` (default) makes the first request once that has finished
  (its duration is ``dashboard_warmup_s``), ``--warm race`` straight after start-up,
  ``--warm off`` with no warming at all (the first request computes everything);
* **browser**: Chromium (Playwright, Debian's chromium) loads the page signed in and
  we read the navigation's ``loadEventEnd`` and the time until every chart (or the
  map) has been drawn.

Prints one JSON line per run and the medians::

    nice -n 10 .venv/bin/python benchmarks/products_render.py            # 1M vs 20k
    .venv/bin/python benchmarks/products_render.py --people 100000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PURPOSE = "safeguarding_children"

# table -> columns to make unique per copy (ids get "~k"; pseudonyms are re-hashed)
REPLICATE: dict[str, dict[str, str]] = {
    "gold.nominals": {
        "nominal_id": "id",
        "nominal_pseudo": "pseudo",
        "household_id": "id",
        "oa_code": "id",
    },
    "gold.households": {"household_id": "id", "household_pseudo": "pseudo", "oa_code": "id"},
    "gold.household_members": {"household_id": "id", "nominal_id": "id"},
    "gold.relationships": {"nominal_id": "id", "related_nominal_id": "id"},
    "gold.events": {
        "record_key": "pseudo",
        "event_key": "pseudo",
        "nominal_id": "id",
        "nominal_pseudo": "pseudo",
        "household_id": "id",
        "household_pseudo": "pseudo",
        "oa_code": "id",
    },
    # each copy is a town of its own: its own output areas and wards (same shapes)
    "reference.output_areas": {"oa_code": "id", "ward_code": "id"},
    "reference.wards": {"ward_code": "id"},
}


def replicate(home: Any, copies: int) -> None:
    """Make ``copies`` copies of the gold tables of ``home`` in one new snapshot."""
    from nominal.engines import duck
    from nominal.engines.lake import Lake

    lake = Lake(home.lake)
    snapshot = lake.require_current()
    con = duck.connect(snapshot, threads=2, memory_limit="3GB")
    with lake.transaction(f"replicate x{copies}") as tx:
        for table, cols in REPLICATE.items():
            if not snapshot.has(table):
                continue  # e.g. reference.wards in a hub with oracle gold only
            names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            select = []
            for n in names:
                kind = cols.get(n)
                if kind == "id":
                    select.append(f"CASE WHEN k = 0 THEN {n} ELSE {n} || '~' || k END AS {n}")
                elif kind == "pseudo":
                    select.append(
                        f"CASE WHEN k = 0 THEN {n} ELSE left(md5({n} || k), 32) END AS {n}"
                    )
                else:
                    select.append(n)
            path = tx.new_file(table)
            con.execute(
                f"COPY (SELECT {', '.join(select)} FROM {table}, range({copies}) r(k)) "
                f"TO '{path}' (FORMAT parquet, COMPRESSION zstd)"
            )
            tx.replace(table, [path])
        tx.commit({"replicated": copies})
    con.close()


def build(root: Path, people: int, base: int, town: Path) -> Any:
    """A demo hub on ``town`` (replicated up to ``people`` if that is more than
    ``base``), with the demand aggregates built as the pipeline's products stage does.

    A hub already built under ``root`` (``ready`` marker) is reused: building the gold
    tables of a million people takes far longer than measuring them."""
    from nominal.config import home as make_home
    from nominal.govern.demo import DemoAccount
    from nominal.ingest.api import import_synth_geography
    from nominal.insight.oracle import gold_from_truth

    hub = make_home(root).ensure()
    ready = root / "products-render-ready.json"
    if ready.exists():
        return hub, DemoAccount(**json.loads(ready.read_text())["practitioner"])
    steps: dict[str, float] = {}
    started = time.perf_counter()
    gold_from_truth(town, hub)
    steps["gold_from_truth_s"] = time.perf_counter() - started
    import_synth_geography(hub, town / "geography")
    if people > base:
        started = time.perf_counter()
        replicate(hub, people // base)
        steps["replicate_s"] = time.perf_counter() - started
    account = finish(hub, town, steps)
    ready.write_text(json.dumps({"practitioner": account.__dict__, "steps": steps}, default=str))
    return hub, account


def finish(hub: Any, town: Path, steps: dict[str, float]) -> Any:
    """Demo governance and teams, and the demand aggregates (timed into ``steps``)."""
    from nominal.govern.demo import seed_demo
    from nominal.products.aggregates import build as build_aggregates
    from nominal.products.demo import seed_products

    started = time.perf_counter()
    result = build_aggregates(hub)
    steps["aggregates_s"] = time.perf_counter() - started
    steps["aggregate_rows"] = sum(result.get("rows", {}).values())
    print(json.dumps({"step": "aggregates", **steps}, default=str), flush=True)
    accounts = seed_demo(hub, town / "contracts")
    seed_products(hub)
    return accounts.by_role("practitioner")


def serve(hub: Any, warm: bool = True) -> tuple[Any, threading.Thread, str, Any]:
    import uvicorn

    from nominal.web.app import create_app

    app = create_app(hub, secure_cookies=False, warm=warm)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}", app


def sign_in_cookies(base_url: str, hub: Any, account: Any) -> str:
    """Sign in over HTTP and return the Cookie header value."""
    import http.cookiejar
    import re
    import urllib.parse

    from nominal.govern.auth import totp_now

    engine = sa.create_engine(hub.database_url)
    with engine.begin() as c:
        c.execute(
            sa.text("UPDATE users SET last_totp_step = NULL WHERE username = :u"),
            {"u": account.username},
        )
    engine.dispose()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base_url + "/sign-in").read().decode()
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode(
        {
            "username": account.username,
            "password": account.password,
            "code": totp_now(account.totp_secret),
            "csrf_token": csrf,
            "next": "/",
        }
    ).encode()
    opener.open(base_url + "/sign-in", data=data).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def timed_get(url: str, cookie: str) -> float:
    start = time.perf_counter()
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
        assert response.status == 200
    return time.perf_counter() - start


def measure(hub: Any, account: Any, browser: Any, warm: str = "wait") -> dict[str, float]:
    """``warm``: "off" (no start-up warming: the first request computes the figures),
    "race" (warming on, first request straight after start-up: it waits for the
    warming's result) or "wait" (first request once the warming has finished, timed
    into ``dashboard_warmup_s``)."""
    started = time.perf_counter()
    server, thread, base_url, app = serve(hub, warm=warm != "off")
    try:
        out: dict[str, float] = {}
        if warm == "wait":
            app.state.hub.cache["dashboard_warmed"].wait(timeout=1800)
            out["dashboard_warmup_s"] = time.perf_counter() - started
        cookie = sign_in_cookies(base_url, hub, account)
        for name, path in (
            ("dashboard", f"/dashboard?purpose={PURPOSE}"),
            ("map", f"/map?purpose={PURPOSE}"),
        ):
            out[f"{name}_server_cold_s"] = timed_get(base_url + path, cookie)
            out[f"{name}_server_warm_s"] = timed_get(base_url + path, cookie)
        context = browser.new_context()
        context.add_cookies(
            [
                {"name": n, "value": v, "url": base_url}
                for n, v in (c.split("=", 1) for c in cookie.split("; "))
            ]
        )
        page = context.new_page()
        for name, path, ready in (
            (
                "dashboard",
                f"/dashboard?purpose={PURPOSE}",
                ".nominal-chart[data-rendered=true] >> nth=3",
            ),
            (
                "map",
                f"/map?purpose={PURPOSE}",
                "#map[data-rendered=true]",
            ),
        ):
            start = time.perf_counter()
            page.goto(base_url + path, timeout=600_000)
            page.locator(ready).wait_for(timeout=600_000)  # no eval: the CSP forbids it
            out[f"{name}_browser_drawn_s"] = time.perf_counter() - start
            out[f"{name}_browser_load_event_s"] = page.evaluate(
                "performance.getEntriesByType('navigation')[0].loadEventEnd / 1000"
            )
        context.close()
        return out
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def compute(hub: Any, direct: bool) -> dict[str, float]:
    """In-process time to compute the dashboard's figures (no HTTP, no rendering) from
    the aggregates and, if ``direct``, from the events as before, on the same snapshot."""
    from nominal.products import demand
    from nominal.products.aggregates import Aggregates
    from nominal.products.lakeview import Filters, open_snapshot

    con, snapshot = open_snapshot(hub)
    try:
        started = time.perf_counter()
        aggregates = Aggregates.load(con, snapshot)
        assert aggregates is not None, "the aggregates are missing or stale"
        fast = demand.dashboard(con, Filters(), aggregates=aggregates)
        out = {"dashboard_compute_precomputed_s": time.perf_counter() - started}
        if direct:
            started = time.perf_counter()
            slow = demand.dashboard(con, Filters())
            out["dashboard_compute_direct_s"] = time.perf_counter() - started
            assert slow.summary() | {"precomputed": 0} == fast.summary() | {"precomputed": 0}
        return out
    finally:
        con.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--base", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--synth",
        type=Path,
        help="a generated population (e.g. /work/data/synth-1m) for the target, "
        "instead of replicating the base town",
    )
    parser.add_argument(
        "--keep", type=Path, help="build the hubs here and reuse them on the next run"
    )
    parser.add_argument("--build-only", action="store_true", help="build the hubs, measure nothing")
    parser.add_argument(
        "--warm",
        choices=("wait", "race", "off"),
        default="wait",
        help="start-up warming of the dashboard: first request after it has finished "
        "(wait, default), straight after start-up while it runs (race), or none (off, "
        "as before the warming existed)",
    )
    parser.add_argument(
        "--skip-direct",
        action="store_true",
        help="do not time the direct computation from the events (minutes at 1M)",
    )
    parser.add_argument(
        "--compute-only",
        action="store_true",
        help="only the in-process dashboard computation from the aggregates (no server, "
        "no browser, no direct computation)",
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from nominal.synth import generate

    with tempfile.TemporaryDirectory(prefix="products-render-") as tmp:
        root = args.keep or Path(tmp)
        town = root / "town"
        if not (town / "truth").is_dir():
            started = time.perf_counter()
            generate(town, args.base, seed=args.seed)
            print(
                json.dumps(
                    {
                        "step": "synth",
                        "people": args.base,
                        "s": round(time.perf_counter() - started, 1),
                    }
                ),
                flush=True,
            )
        sizes = {"peer": args.base, "target": args.people}
        sources = {"peer": town, "target": args.synth or town}
        hubs = {}
        for label, people in sizes.items():
            started = time.perf_counter()
            replicate_to = people if args.synth is None else 0
            hubs[label] = build(root / label, replicate_to, args.base, sources[label])
            print(
                json.dumps(
                    {
                        "step": "build",
                        "size": label,
                        "people": people,
                        "source": str(sources[label]),
                        "s": round(time.perf_counter() - started, 1),
                    }
                ),
                flush=True,
            )
        if args.build_only:
            return 0
        if args.compute_only:
            for label in sizes:
                times = [
                    compute(hubs[label][0], direct=False)["dashboard_compute_precomputed_s"]
                    for _ in range(args.runs)
                ]
                print(
                    json.dumps(
                        {
                            "size": label,
                            "people": sizes[label],
                            "dashboard_compute_precomputed_s": [round(t, 3) for t in times],
                            "median_s": round(statistics.median(times), 3),
                        }
                    ),
                    flush=True,
                )
            return 0
        results: dict[str, list[dict[str, float]]] = {k: [] for k in sizes}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for run in range(args.runs):
                for label in sizes:  # the peer straight after the target, in each run
                    found = measure(*hubs[label], browser, args.warm)
                    found.update(compute(hubs[label][0], direct=run == 0 and not args.skip_direct))
                    results[label].append(found)
                    print(
                        json.dumps(
                            {
                                "run": run + 1,
                                "size": label,
                                "people": sizes[label],
                                **{k: round(v, 3) for k, v in found.items()},
                            }
                        ),
                        flush=True,
                    )
            browser.close()
        medians = {
            label: {k: round(statistics.median(r[k] for r in rows if k in r), 3) for k in rows[0]}
            for label, rows in results.items()
        }
        ratio = {
            k: round(medians["target"][k] / medians["peer"][k], 2)
            for k in medians["target"]
            if medians["peer"].get(k)
        }
        print(json.dumps({"medians": medians, "people": sizes, "ratio_target_over_peer": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
