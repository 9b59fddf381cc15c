"""Risk models on the hub's own linkage beside perfect (oracle) linkage, same town.

Generates a town, takes its feeds in and links them with the hub's pipeline, trains the
risk models on that lake; builds oracle gold for the same town and trains again; prints
both, with the generator's oracle AUC where the units can be mapped to the truth::

    .venv/bin/python benchmarks/risk_linkage.py --people 12000
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from datetime import date
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from rich.progress import Progress

    from nominal.config import home
    from nominal.contracts.registry import add_contracts
    from nominal.ingest.api import import_synth_geography, ingest_paths
    from nominal.insight import risk
    from nominal.insight.oracle import gold_from_truth
    from nominal.link.pipeline import link_lake
    from nominal.synth import generate

    with tempfile.TemporaryDirectory(prefix="risk-linkage-") as tmp:
        work = Path(tmp)
        town = work / "town"
        generate(town, args.people, seed=args.seed)
        real = home(work / "real").ensure()
        t0 = time.perf_counter()
        import_synth_geography(real, town / "geography")
        add_contracts(real, town / "contracts")
        with Progress(disable=True) as progress:
            ingest_paths(real, [town / "feeds"], progress)
        link_lake(real, mode="incremental", progress=lambda message: None)
        print(f"ingest and link: {time.perf_counter() - t0:.0f} s")
        oracle = home(work / "oracle").ensure()
        gold_from_truth(town, oracle)

        print(f"{'model':<20} {'linkage':<8} {'units':>6} {'outc.':>5} {'LightGBM':>8} "
              f"{'logistic':>8} {'count':>6} {'oracle':>6} {'Brier':>7}")  # fmt: skip
        for label, hub in (("hub", real), ("perfect", oracle)):
            for r in risk.train_all(hub, truth=town / "truth", end=date(2026, 10, 31)):
                if r.model is None:
                    print(f"{r.name:<20} {label:<8} not trained: {r.error}")
                    continue
                m = r.model.metrics
                o = m.get("oracle", {}).get("roc_auc", math.nan)
                print(
                    f"{r.name:<20} {label:<8} {m['lightgbm']['n']:>6,} "
                    f"{m['lightgbm']['positives']:>5} {m['lightgbm']['roc_auc']:>8.3f} "
                    f"{m['logistic']['roc_auc']:>8.3f} {m['count_rule']['roc_auc']:>6.3f} "
                    f"{o:>6.3f} {m['lightgbm']['brier']:>7.4f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
