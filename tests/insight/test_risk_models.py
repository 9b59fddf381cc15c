"""Risk models trained on a town with signal: better than the rule, calibrated, explained,
carded, and honest about what they cannot do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from insight_fixtures import Trained

from nominal.insight import explain, training
from nominal.insight.specs import HUMAN_OVERSIGHT


def test_model_beats_the_count_of_agencies(trained: Trained) -> None:
    m = trained.results["cin_cp_escalation"].model
    assert m is not None
    lgbm, rule = m.metrics["lightgbm"], m.metrics["count_rule"]
    assert lgbm["positives"] >= 10
    assert lgbm["roc_auc"] > rule["roc_auc"] + 0.03
    assert lgbm["roc_auc"] > 0.75
    # and it is compared with the logistic regression in the same run, on the same rows
    assert m.metrics["logistic"]["n"] == lgbm["n"] == rule["n"]


def test_calibrated_probabilities_beat_the_base_rate(trained: Trained) -> None:
    for name in ("cin_cp_escalation", "da_high_risk"):
        m = trained.results[name].model
        assert m is not None
        lg = m.metrics["lightgbm"]
        assert lg["brier"] < lg["base_rate_brier"], name
        # mean predicted probability close to the observed rate (within a factor of two)
        mean = float(m.validation["score_lightgbm"].mean())
        assert 0.5 * lg["prevalence"] < mean < 2 * lg["prevalence"], name


def test_temporal_split(trained: Trained) -> None:
    m = trained.results["cin_cp_escalation"].model
    assert m is not None
    assert max(m.dates["train"]) < m.dates["calibrate"][0] < m.dates["validate"][0]
    assert set(pd.to_datetime(m.validation["as_of"]).dt.date) == set(m.dates["validate"])


def test_oracle_metrics_use_the_generators_probabilities(trained: Trained) -> None:
    m = trained.results["cin_cp_escalation"].model
    assert m is not None
    oracle = m.metrics["oracle"]
    assert oracle["matched_units"] >= 0.95 * m.metrics["lightgbm"]["n"]
    assert 0.7 < oracle["roc_auc"] <= 1.0
    assert m.summary()["oracle_roc_auc"] == oracle["roc_auc"]


def test_too_rare_an_outcome_is_reported_not_trained(trained: Trained) -> None:
    result = trained.results["child_exploitation"]
    assert result.model is None
    assert result.error is not None and "outcomes" in result.error
    assert result.summary() == {
        "model": "child_exploitation",
        "trained": False,
        "error": result.error,
    }


def test_explanations_add_up_to_the_score(trained: Trained) -> None:
    m = trained.results["da_high_risk"].model
    assert m is not None
    rows = m.validation.head(300)
    exp = explain.shap_values(m, rows)
    total = exp.contributions.sum(axis=1) + exp.base_value
    np.testing.assert_allclose(total, exp.raw_scores, atol=1e-6)
    # the calibrated score is a monotone function of the raw score
    order = np.argsort(exp.raw_scores)
    assert np.all(np.diff(m.predict(rows.iloc[order])) >= -1e-12)


def test_explanations_name_real_features_in_words(trained: Trained) -> None:
    m = trained.results["cin_cp_escalation"].model
    assert m is not None
    top = m.validation.sort_values("score_lightgbm", ascending=False).head(20)
    _, why = explain.reasons(m, top)
    assert all(why), "every high score has at least one reason"
    for reasons in why:
        for r in reasons:
            assert r["feature"] in m.features
            assert r["contribution"] > 0
            assert "_" not in r["text"], r["text"]  # words, not column names
            value = top.iloc[0][r["feature"]]
            assert isinstance(value, (float, np.floating))  # float32 features
    texts = [r["text"] for reasons in why for r in reasons]
    assert any(re.search(r"\d+ .*(agenc|referral|incident|record|plan)", t) for t in texts)


def test_models_are_saved_and_versioned(trained: Trained) -> None:
    result = trained.results["cin_cp_escalation"]
    m = result.model
    assert m is not None
    folder = Path(result.paths["path"])
    assert folder == trained.home.models / "risk" / "cin_cp_escalation" / m.version
    assert (folder / "model.joblib").exists() and (folder / "lightgbm.txt").exists()
    loaded = training.load(trained.home.models, "cin_cp_escalation")
    rows = m.validation.head(50)
    np.testing.assert_allclose(loaded.predict(rows), m.predict(rows))
    listed = {(v["model"], v["version"]) for v in training.versions(trained.home.models)}
    assert ("cin_cp_escalation", m.version) in listed


def test_model_card_holds_the_runs_metrics(trained: Trained) -> None:
    result = trained.results["cin_cp_escalation"]
    m = result.model
    assert m is not None
    card_json = Path(result.paths["card_json"])
    card_html = Path(result.paths["card_html"])
    assert card_json.parent == trained.home.reports / "model-cards"
    card = json.loads(card_json.read_text())
    for method in ("lightgbm", "logistic", "count_rule"):
        for metric in ("roc_auc", "pr_auc", "brier", "precision_at_k", "recall_at_k"):
            assert card["metrics"][method][metric] == m.metrics[method][metric]
    assert card["k"] == m.k and card["team_capacity"] == 150
    assert card["human_oversight"] == HUMAN_OVERSIGHT
    assert card["intended_use"] and card["misuse"] and card["limitations"]
    assert len(card["calibration_curve"]["mean_predicted"]) >= 5
    html = card_html.read_text()
    assert f"{m.metrics['lightgbm']['roc_auc']:.3f}" in html
    assert f"{m.metrics['count_rule']['roc_auc']:.3f}" in html
    assert "nothing is decided automatically" in html
    assert "<svg" in html
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html


def test_fairness_table_by_sex_ethnicity_and_deprivation(trained: Trained) -> None:
    result = trained.results["cin_cp_escalation"]
    assert result.card is not None and result.model is not None
    fair = result.card["fairness"]
    assert set(fair["attributes"]) == {"sex", "ethnicity", "deprivation"}
    n = result.model.metrics["lightgbm"]["n"]
    for attribute, a in fair["attributes"].items():
        assert sum(g["units"] for g in a["groups"]) == n, attribute
        assert (
            sum(g["outcomes"] for g in a["groups"]) == result.model.metrics["lightgbm"]["positives"]
        )
    groups = {g["group"] for g in fair["attributes"]["sex"]["groups"]}
    assert {"Male", "Female"} <= groups
    assert any("most deprived" in g["group"] for g in fair["attributes"]["deprivation"]["groups"])
    html = Path(result.paths["card_html"]).read_text()
    assert html.count('class="fairness"') == 3
