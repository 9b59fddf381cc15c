"""``--engine spark`` (pyspark local mode) writes the same features and scores as DuckDB.

One small synthetic town, linked perfectly (oracle gold), goes through the pipeline's
features and score stages on each engine; the lake tables they write are compared
column by column (floats within a tolerance). The town is far too small for the risk
models' real outcomes, so the models scored here are fitted to a proxy label (a
unit's recorded events): what is checked is that both engines apply the same
trained LightGBM model, its SHAP reasons, ranks, bands and cohorts identically.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from nominal.config import Home
from nominal.config import home as make_home
from nominal.engines.lake import Lake
from nominal.ingest.api import import_synth_geography
from nominal.insight import dataset, scoring, training
from nominal.insight.oracle import gold_from_truth
from nominal.insight.specs import SPECS
from nominal.pipeline.runner import run_pipeline
from nominal.synth import generate

# Spark's per-job overhead, not the data, sets the time: about a minute each on an idle
# two-core machine; the allowance covers a machine shared with other work.
pytestmark = [pytest.mark.spark, pytest.mark.timeout(1800)]

PEOPLE = 300
KEYS = {
    "gold.features_person": ["nominal_id"],
    "gold.features_household": ["household_id"],
    "gold.features_area": ["oa_code"],
    "gold.scores": ["model", "unit_id"],
    "gold.cohorts": ["cohort", "unit_id"],
}
PROXY_MODELS = ("da_high_risk", "child_exploitation", "cin_cp_escalation")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("spark-engine")
    generate(root / "town", PEOPLE, seed=5)
    home = make_home(root / "home").ensure()
    import_synth_geography(home, root / "town" / "geography")
    gold_from_truth(root / "town", home)
    return home


def _table(home: Home, name: str) -> pa.Table:
    return Lake(home.lake).require_current().read(name)


def _frame(table: pa.Table, name: str) -> pd.DataFrame:
    return table.to_pandas().sort_values(KEYS[name]).reset_index(drop=True)


def _assert_same(duck: pa.Table, spark: pa.Table, name: str) -> None:
    assert spark.schema.names == duck.schema.names, name
    assert [str(t) for t in spark.schema.types] == [str(t) for t in duck.schema.types], name
    a, b = _frame(duck, name), _frame(spark, name)
    assert len(a) == len(b) > 0, name
    for col in a.columns:
        if col == "reasons":
            continue
        if pd.api.types.is_float_dtype(a[col]):
            pd.testing.assert_series_equal(b[col], a[col], check_exact=False, rtol=1e-9)
        else:
            pd.testing.assert_series_equal(b[col], a[col], check_exact=True)


def _run(home: Home, stage: str, engine: str) -> dict:
    report = run_pipeline(home, [stage], engine)
    assert report.ok, report.error
    return report.stages[0]


def test_features_on_spark_equal_duckdb(hub: Home) -> None:
    _run(hub, "features", "duckdb")
    duck = {name: _table(hub, name) for name in KEYS if name.startswith("gold.features")}
    figures = _run(hub, "features", "spark")
    assert figures["outputs"]["gold.features_person"] == duck["gold.features_person"].num_rows
    for name, table in duck.items():
        _assert_same(table, _table(hub, name), name)
    # the features carry signal (not all zeros) on both engines
    person = _frame(_table(hub, "gold.features_person"), "gold.features_person")
    assert person["p_events_3y"].sum() > 0 and person["p_police_incidents_5y"].sum() > 0


def _train_proxy_models(home: Home) -> None:
    snapshot = Lake(home.lake).require_current()
    end = scoring.default_as_of(snapshot)
    dates = training.split_dates(end, scoring.first_event(snapshot))
    specs = [SPECS[n] for n in PROXY_MODELS]
    all_dates = sorted({d for ds in dates.values() for d in ds})
    rows = dataset.rows_for_dates(snapshot, specs, all_dates, respect_received=False)
    for spec in specs:
        frame = rows[spec.name]
        activity = frame["h_events_3y"] + frame.get("p_events_3y", 0)
        frame["label"] = (activity > activity.median()).astype(int)
        training.save(training.fit(spec, frame, dates), home.models)


def test_scores_on_spark_equal_duckdb(hub: Home) -> None:
    _train_proxy_models(hub)
    duck_stage = _run(hub, "score", "duckdb")
    assert set(duck_stage["outputs"]) == {"gold.scores", "gold.cohorts"}
    duck = {name: _table(hub, name) for name in ("gold.scores", "gold.cohorts")}
    _run(hub, "score", "spark")
    spark = {name: _table(hub, name) for name in ("gold.scores", "gold.cohorts")}
    scores = _frame(duck["gold.scores"], "gold.scores")
    assert set(scores["model"]) == set(PROXY_MODELS)
    assert scores["score"].std() > 0  # a model that scores everyone alike would prove nothing
    for name in duck:
        _assert_same(duck[name], spark[name], name)
        # reasons: the same factors in the same order, contributions within tolerance
        a, b = _frame(duck[name], name), _frame(spark[name], name)
        for left, right in zip(a["reasons"], b["reasons"], strict=True):
            x, y = json.loads(left), json.loads(right)
            if isinstance(x, dict):  # an area cohort's summary
                assert x == pytest.approx(y)
                continue
            assert [r["feature"] for r in x] == [r["feature"] for r in y]
            assert [r["contribution"] for r in x] == pytest.approx(
                [r["contribution"] for r in y], abs=1e-4
            )
