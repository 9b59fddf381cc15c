"""Linkage accuracy against the synthetic ground truth (``nominal synth`` truth files).

Generates a town, ingests it with the real ``nominal ingest``, runs ``nominal link``
(training the model) and prints pairwise precision / recall / F1, B-cubed, blocking
pair recall, overall and for every pair of datasets (true pairs, predicted pairs,
precision, recall, F1; largest first)::

    .venv/bin/python benchmarks/link_accuracy.py --people 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pytest


def run(people: int, seed: int) -> dict:
    from nominal.config import home as make_home
    from nominal.contracts.registry import add_contracts
    from nominal.engines import duck
    from nominal.engines.lake import Lake
    from nominal.ingest.api import ingest_paths
    from nominal.link import evaluate
    from nominal.link import settings as link_settings
    from nominal.link.pipeline import link_lake
    from nominal.synth import generate

    with tempfile.TemporaryDirectory(prefix="link-accuracy-") as tmp:
        town = Path(tmp) / "town"
        generate(town, people, seed=seed)
        home = make_home(Path(tmp) / "home").ensure()
        add_contracts(home, town / "contracts")
        ingest_paths(home, [town / "feeds"])
        started = time.perf_counter()
        summary = link_lake(home, mode="full", retrain=True)
        seconds = time.perf_counter() - started
        con = duck.connect(Lake(home.lake).require_current())
        evaluate.register_truth(con, town / "truth")
        metrics = evaluate.cluster_metrics(con, "gold.nominal_records")
        per_pair = evaluate.per_dataset_pair(con)
        con.execute("CREATE TABLE std AS SELECT * FROM link.standardised").fetchall()
        rules = [
            r.get_blocking_rule("duckdb").blocking_rule_sql
            for r in link_settings.prediction_blocking_rules()
            if not isinstance(r, dict)
        ]
        blocking = evaluate.blocking_recall(con, "std", rules)
        return {
            "people": people,
            "seed": seed,
            "link_seconds_including_training": round(seconds, 1),
            "pairs_scored": summary["pairs_scored"],
            "match_threshold": link_settings.MATCH_PROBABILITY,
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()},
            "blocking_pair_recall": round(blocking["recall"], 5),
            "per_dataset_pair": sorted(per_pair, key=lambda r: (-r["true_pairs"], r["datasets"])),
        }


@pytest.mark.benchmark
def test_link_accuracy_small() -> None:
    result = run(3000, 3)
    assert result["f1"] >= 0.98


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    result = run(args.people, args.seed)
    per_pair = result.pop("per_dataset_pair")
    print(json.dumps(result, indent=1))
    print(f"{'datasets':<50} {'true pairs':>10} {'predicted':>10} {'P':>7} {'R':>7} {'F1':>7}")
    for row in per_pair:
        print(
            f"{row['datasets']:<50} {row['true_pairs']:>10} {row['predicted_pairs']:>10} "
            f"{row['precision']:>7.4f} {row['recall']:>7.4f} {row['f1']:>7.4f}"
        )


if __name__ == "__main__":
    sys.exit(main())
