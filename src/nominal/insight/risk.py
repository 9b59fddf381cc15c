"""One training run: features for every as-of date, each model fitted, evaluated, saved
and given its model card.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from nominal.config import Home
from nominal.engines.lake import Lake, Snapshot
from nominal.insight import cards, dataset, explain, fairness, features, scoring, training
from nominal.insight.specs import SPECS, ModelSpec


@dataclass
class RunResult:
    name: str
    model: training.TrainedModel | None
    card: dict[str, Any] | None
    paths: dict[str, str]
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        if self.model is None:
            return {"model": self.name, "trained": False, "error": self.error}
        out = {"trained": True, **self.model.summary(), **self.paths}
        if self.card and self.card.get("fairness"):
            out["largest_recall_gap"] = self.card["fairness"]["largest_recall_gap"]
        return out


def data_start(snapshot: Snapshot) -> date:
    """When the feeds' history begins: the median over datasets of their first event.

    A few case records start long before the hub's history (a benefit claim opened
    years ago), so the earliest event date alone would overstate the history.
    """
    from nominal.engines.duck import connect

    con = connect(snapshot, tables=["gold.events"])
    row = con.execute(
        "SELECT quantile_disc(first, 0.5) FROM "
        "(SELECT dataset, min(event_date) AS first FROM gold.events GROUP BY dataset)"
    ).fetchone()
    if row is None or row[0] is None:
        raise training.TrainingError("gold.events is empty: link (or build oracle gold) first")
    value: date = row[0]
    return value


def truth_ids(snapshot: Snapshot, truth: Path, unit: str) -> pd.DataFrame | None:
    """Map the lake's unit ids to the synthetic truth's ids (for oracle metrics).

    With oracle gold the ids are ``p<person>``/``h<household>``; with the hub's own
    linkage a nominal is mapped to the true person most of its records belong to.
    """
    from nominal.engines.duck import connect

    con = connect(snapshot, tables=["gold.nominals", "gold.nominal_records"])
    sample = con.execute("SELECT nominal_id FROM gold.nominals LIMIT 1").fetchall()[0]
    if sample and str(sample[0]).startswith("p") and str(sample[0])[1:].isdigit():
        return None  # ids already carry the truth id
    if unit != "person" or not snapshot.has("gold.nominal_records"):
        return pd.DataFrame(columns=["unit_id", "truth_id"])
    return con.sql(
        f"""SELECT r.nominal_id AS unit_id, mode(t.person_id) AS truth_id
            FROM gold.nominal_records r
            JOIN read_parquet('{truth / "records.parquet"}') t
              ON t.dataset = r.dataset AND t.source_record_id = r.source_record_id
            GROUP BY r.nominal_id"""
    ).df()


def train_all(
    home: Home,
    names: list[str] | None = None,
    *,
    end: date | None = None,
    truth: Path | None = None,
    capacity: int | None = None,
    step: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Train the named models (default all four) on the current lake snapshot."""
    lake = Lake(home.lake)
    snapshot = lake.require_current()
    end = end or scoring.default_as_of(snapshot)
    start = data_start(snapshot) - timedelta(days=5)
    dates = training.split_dates(end, start)
    specs: list[ModelSpec] = [SPECS[n] for n in (names or list(SPECS))]
    all_dates = [d for ds in dates.values() for d in ds]
    # a history loaded in bulk (all received at load time) would look empty as of any
    # past date if features waited for delivery; then event dates alone decide
    bulk = features.backfilled(snapshot, dates["train"][-1])
    if step:
        step(f"features as of {len(all_dates)} dates")
    # the model rows of every model and date go to Parquet files, and each model is
    # fitted on its own rows read back as float32 matrices and freed before the next:
    # at a million people all of them at once would not fit in memory
    spill = Path(tempfile.mkdtemp(prefix="risk-rows-", dir=home.root))
    try:
        files = dataset.rows_to_parquet(
            snapshot, specs, all_dates, spill, respect_received=not bulk
        )
        return [
            _train_one(home, snapshot, spec, files[spec.name], dates, truth, capacity, bulk, step)
            for spec in specs
        ]
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _train_one(
    home: Home,
    snapshot: Snapshot,
    spec: ModelSpec,
    files: list[Path],
    dates: dict[str, list[date]],
    truth: Path | None,
    capacity: int | None,
    bulk: bool,
    step: Callable[[str], None] | None,
) -> RunResult:
    """Fit, evaluate, save and card one model from its spilled rows."""
    if step:
        step(f"training {spec.name}")
    try:
        model = training.fit_slices(
            spec, dataset.read_slices(files, dates), dates, capacity=capacity
        )
    except training.TrainingError as exc:
        return RunResult(spec.name, None, None, {}, str(exc))
    gc.collect()  # the training slices are gone: give their memory back before the next
    if truth is not None:
        mapping = truth_ids(snapshot, truth, spec.unit)
        oracle = training.oracle_metrics(model, truth / "outcomes.parquet", mapping)
        if oracle:
            model.metrics["oracle"] = oracle
    fair = fairness.fairness(model.validation, "score_lightgbm", model.k)
    importance = explain.importance(model, model.validation)
    folder = training.save(model, home.models)
    data = {
        "snapshot": snapshot.id,
        "point_in_time": "events dated before each as-of date (the history was loaded in "
        "bulk after the fact, so delivery dates could not be used; live scoring also "
        "waits for delivery)"
        if bulk
        else "events dated before each as-of date and received by the hub by then",
        "linkage": "oracle (synthetic ground truth)"
        if truth is not None and truth_ids(snapshot, truth, spec.unit) is None
        else "the hub's record linkage (gold tables)",
    }
    card = cards.build_card(model, fair, importance, data)
    json_path, html_path = cards.write_card(home.reports, card)
    (folder / "model_card.json").write_text(json_path.read_text())
    return RunResult(
        spec.name,
        model,
        card,
        {"path": str(folder), "card_json": str(json_path), "card_html": str(html_path)},
    )
