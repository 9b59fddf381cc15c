"""Risk at scale: features, training and scoring times for a large synthetic population.

The hub's lake must already hold the town's feeds, ingested by the hub itself
(``nominal ingest DIR/feeds --contracts DIR/contracts``). Linking a million people is
not part of this benchmark: the linked (gold) tables are built from the ingested
``silver.events`` with the synthetic truth's person and household ids (perfect
linkage, ``gold_from_truth(..., events_from="silver")``) -- the figures are the risk
steps' own costs, not linkage's. With ``--oracle-gold`` no ingest is needed: the gold
tables are built straight from the town's feeds and truth (``nominal risk oracle``).
Each step prints its wall time, this process's CPU seconds and its peak memory as it
finishes, so a run stopped early still reports the steps it finished::

    NOMINAL_HOME=/tmp/hub-1m nominal ingest /data/synth-1m/feeds --contracts /data/synth-1m/contracts
    .venv/bin/python benchmarks/risk_scale.py --town /data/synth-1m --home /tmp/hub-1m \\
        --models-from /tmp/hub-100k [--train [--model NAME ...]]
    .venv/bin/python benchmarks/risk_scale.py --town /data/synth-1m --home /tmp/hub-1m \\
        --oracle-gold --no-score          # gold tables from the truth, then features only

``--models-from`` copies already trained models (e.g. from a ``risk_bench.py --home``
run) so scoring can be timed without training at this size; ``--train`` trains all
four models here first (long: features for every as-of date). Each step's peak memory
is the process's, so to see training's and scoring's apart run them in two processes::

    .venv/bin/python benchmarks/risk_scale.py --town T --home H --no-features --train --no-score
    .venv/bin/python benchmarks/risk_scale.py --town T --home H --no-features
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds (user + system) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _step(name: str, seconds: float, cpu: float, detail: str = "") -> None:
    print(
        f"{name:<48} {seconds:>9.1f} s wall  {cpu:>9.1f} s CPU   "
        f"peak RSS {_peak_mib():>7,.0f} MiB  {detail}",
        flush=True,
    )


def _progress(t0: float, c0: float) -> Callable[[str], None]:
    """Print each training stage as it starts, with the time and CPU spent so far."""

    def step(message: str) -> None:
        _step(f"  {message} (starts)", time.perf_counter() - t0, _cpu() - c0)

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--town", type=Path, required=True, help="folder nominal synth wrote")
    parser.add_argument("--home", type=Path, required=True, help="hub home with the ingest")
    parser.add_argument("--models-from", type=Path, help="hub home with trained models")
    parser.add_argument("--train", action="store_true", help="train the models here")
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        help="with --train: train only this model (repeat); default all four",
    )
    parser.add_argument(
        "--oracle-gold",
        action="store_true",
        help="build the gold tables from the town's feeds and truth (no ingest needed)",
    )
    parser.add_argument(
        "--replicate",
        type=int,
        default=1,
        help="copy the gold tables this many times first, each copy with its own ids, "
        "pseudonyms and output areas (benchmarks/products_render.py: a 20k town x 50 = 1M)",
    )
    parser.add_argument("--as-of", default="2026-10-31")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory limit")
    parser.add_argument(
        "--no-features",
        action="store_true",
        help="skip timing features alone (scoring builds them)",
    )
    parser.add_argument(
        "--no-score", action="store_true", help="stop before scoring (after --train)"
    )
    args = parser.parse_args(argv)

    from nominal.config import home
    from nominal.engines import duck
    from nominal.engines.lake import Lake
    from nominal.insight import features, risk, scoring
    from nominal.insight.oracle import gold_from_truth

    # every DuckDB session of this process stays within the limit (the machine is shared)
    assert duck.connect.__kwdefaults__ is not None
    duck.connect.__kwdefaults__["memory_limit"] = args.memory_limit
    as_of = date.fromisoformat(args.as_of)
    hub = home(args.home).ensure()
    lake = Lake(hub.lake)

    snapshot = lake.current()
    if snapshot is None or not snapshot.has("gold.events"):
        source = "feeds" if args.oracle_gold else "silver"
        t0, c0 = time.perf_counter(), _cpu()
        rows = gold_from_truth(args.town, hub, events_from=source, memory_limit=args.memory_limit)
        _step(
            f"gold tables from {source} + truth ids",
            time.perf_counter() - t0,
            _cpu() - c0,
            f"{rows['gold.nominals']:,} people, {rows['gold.events']:,} events",
        )
        snapshot = lake.require_current()
    if args.replicate > 1:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from products_render import replicate

        t0, c0 = time.perf_counter(), _cpu()
        replicate(hub, args.replicate)
        _step(f"gold tables replicated x{args.replicate}", time.perf_counter() - t0, _cpu() - c0)
        snapshot = lake.require_current()
    people = len(snapshot.read("gold.nominals", columns=["nominal_id"]))
    print(f"{people:,} people in gold.nominals", flush=True)

    if not args.no_features:
        t0, c0 = time.perf_counter(), _cpu()
        built = features.build(snapshot, as_of)
        _step(
            f"features as of {as_of} (person, household, area)",
            time.perf_counter() - t0,
            _cpu() - c0,
            f"{built.person.num_rows:,} people, {built.household.num_rows:,} households",
        )
        del built

    if args.train:
        t0, c0 = time.perf_counter(), _cpu()
        results = risk.train_all(
            hub, args.models, end=as_of, truth=args.town / "truth", step=_progress(t0, c0)
        )
        _step(
            f"train {', '.join(args.models) if args.models else 'all models'} "
            "(features for every as-of date)",
            time.perf_counter() - t0,
            _cpu() - c0,
        )
        for r in results:
            print(f"  {r.summary()}", flush=True)
        del results
    elif args.models_from is not None and not args.no_score:
        source = home(args.models_from).models / "risk"
        target = hub.models / "risk"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
        print(f"models copied from {source}", flush=True)
    if args.no_score:
        return 0

    t0, c0 = time.perf_counter(), _cpu()
    scored = scoring.score_all(hub, as_of)
    _step(
        "score all models (features, SHAP reasons, cohorts)",
        time.perf_counter() - t0,
        _cpu() - c0,
        f"{scored['scores']:,} units scored",
    )
    for name, info in scored["models"].items():
        print(f"  {name:<20} {info['units']:>9,} units", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
