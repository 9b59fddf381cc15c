"""Training and honest evaluation of the risk models.

Temporal split, never a random one: the model learns from the earliest as-of dates,
its probabilities are calibrated on a later year it never trained on, and everything
reported is measured on the latest complete year, which neither saw. In the same run
the gradient-boosted model is compared with two baselines a partnership could use
without any model: a logistic regression on the same features and a rule that ranks
units by how many agencies know them. A model that cannot beat the rule should not
be used, and its card says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from nominal.insight.dataset import Slice, split
from nominal.insight.specs import ModelSpec

MIN_POSITIVES = 5  # below this many outcomes in a slice, a model is not trained
TIE_BREAK = 1e-6  # weight of the raw score in isotonic-calibrated probabilities
# above this many training rows the logistic regression is fitted on a weighted sample
LOGISTIC_MAX_ROWS = 250_000
# validation features a saved model keeps (the fairness groups read the area's deprivation)
SAVED_FEATURES = ("a_imd_decile",)


class TrainingError(RuntimeError):
    """A model could not be trained (for example too few outcomes); says why."""


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class CountRule:
    """Rank by the number of agencies that know the unit's household (and the person).

    Its probability is the outcome rate per count seen in training (isotonic, so more
    agencies never means less risk), which makes its Brier score comparable.
    """

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        score = frame["h_agencies_3y"].to_numpy(float)
        if self.unit == "person" and "p_agencies_3y" in frame:
            score = score + frame["p_agencies_3y"].to_numpy(float) / 100.0
        return score

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> CountRule:
        self.iso.fit(self.raw(frame), y)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.iso.predict(self.raw(frame)), dtype=float)


def evaluate(y: np.ndarray, p: np.ndarray, k: int) -> dict[str, Any]:
    """ROC AUC, PR AUC, Brier (and the base-rate Brier), ECE, precision/recall at top k."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    n, pos = len(y), int(y.sum())
    both = 0 < pos < n
    order = np.argsort(-p, kind="stable")
    top = order[: min(k, n)]
    rate = pos / n if n else math.nan
    bins = np.clip((p * 10).astype(int), 0, 9)
    ece = sum(
        abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).sum() / n
        for b in range(10)
        if (bins == b).any()
    )
    return {
        "n": n,
        "positives": pos,
        "prevalence": rate,
        "roc_auc": float(roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if both else math.nan,
        "brier": float(brier_score_loss(y, p)) if n else math.nan,
        "base_rate_brier": float(rate * (1 - rate)) if n else math.nan,
        "ece": float(ece),
        "k": int(min(k, n)),
        "precision_at_k": float(y[top].mean()) if len(top) else math.nan,
        "recall_at_k": float(y[top].sum() / pos) if pos else math.nan,
    }


def effective_k(capacity: int, units: int) -> int:
    """A team's capacity, but never more than a tenth of the units scored.

    Small (test) populations would otherwise put everyone in the top k.
    """
    return max(1, min(capacity, math.ceil(units * 0.10)))


def split_dates(end: date, first_event: date, years: int | None = None) -> dict[str, list[date]]:
    """As-of dates on anniversaries of ``end``: train (earliest), calibrate, validate (latest).

    Each as-of date needs a full outcome year after it (so the latest is ``end`` minus a
    year) and at least a year of history before it.
    """

    def back(n: int) -> date:
        day = min(end.day, 28) if end.month == 2 else end.day
        return date(end.year - n, end.month, day)

    earliest = first_event + timedelta(days=360)
    dates = []
    n = 1
    while back(n) >= earliest:
        dates.append(back(n))
        n += 1
        if years is not None and len(dates) >= years:
            break
    if len(dates) < 3:
        raise TrainingError(
            f"need at least three yearly as-of dates with a year of history before and an "
            f"outcome year after; events from {first_event} to {end} give {len(dates)}"
        )
    dates.reverse()
    train = list(dates[:-2])
    # half-year as-of dates between the yearly ones give the model more (overlapping)
    # examples; none has an outcome window reaching into the calibration year
    for later in dates[1:-2]:
        mid = later - timedelta(days=183)
        if mid >= earliest:
            train.append(mid)
    return {"train": sorted(train), "calibrate": [dates[-2]], "validate": [dates[-1]]}


@dataclass
class TrainedModel:
    spec: ModelSpec
    version: str
    features: list[str]
    lgbm: LGBMClassifier
    calibrated: Calibrated
    logistic: Pipeline
    rule: CountRule
    dates: dict[str, list[date]]
    metrics: dict[str, dict[str, Any]]
    calibration: dict[str, list[float]]
    validation: pd.DataFrame  # validation rows with groups, labels and scores
    k: int
    calibration_method: str
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the outcome within the window."""
        x = frame[self.features].to_numpy(np.float32)
        return np.asarray(self.calibrated.predict_proba(x)[:, 1], dtype=float)

    def summary(self) -> dict[str, Any]:
        lg = self.metrics["lightgbm"]
        out = {
            "model": self.spec.name,
            "version": self.version,
            "unit": self.spec.unit,
            "roc_auc": lg["roc_auc"],
            "pr_auc": lg["pr_auc"],
            "brier": lg["brier"],
            "ece": lg["ece"],
            "precision_at_k": lg["precision_at_k"],
            "recall_at_k": lg["recall_at_k"],
            "k": self.k,
            "logistic_roc_auc": self.metrics["logistic"]["roc_auc"],
            "count_rule_roc_auc": self.metrics["count_rule"]["roc_auc"],
        }
        if "oracle" in self.metrics:
            out["oracle_roc_auc"] = self.metrics["oracle"]["roc_auc"]
        return out


def fit(
    spec: ModelSpec,
    rows: pd.DataFrame,
    dates: dict[str, list[date]],
    capacity: int | None = None,
    seed: int = 0,
) -> TrainedModel:
    """Fit LightGBM (calibrated), logistic regression and the count rule; evaluate all three."""
    return fit_slices(spec, split(rows, dates), dates, capacity=capacity, seed=seed)


def _rule_frame(part: Slice) -> pd.DataFrame:
    """The columns the count rule reads, from a slice's feature matrix."""
    index = {name: j for j, name in enumerate(part.features)}
    return pd.DataFrame(
        {c: part.x[:, index[c]] for c in ("h_agencies_3y", "p_agencies_3y") if c in index}
    )


def logistic_sample(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and weights for the logistic regression when the training rows are many.

    Above :data:`LOGISTIC_MAX_ROWS` the regression is fitted on every outcome and a
    uniform random sample of the other rows, each sampled row weighted by the inverse
    of its sampling rate: the weighted loss estimates the full one (so the regression,
    its regularisation and its probabilities mean what they do on all rows) at a
    fraction of the memory -- lbfgs works on float64 copies of what it is given.
    None when the rows are few enough to use them all.
    """
    n = len(y)
    if n <= LOGISTIC_MAX_ROWS:
        return None
    positives = np.flatnonzero(y == 1)
    negatives = np.flatnonzero(y != 1)
    keep = max(LOGISTIC_MAX_ROWS - len(positives), 1)
    if keep >= len(negatives):
        return None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(negatives, size=keep, replace=False))
    rows = np.sort(np.concatenate([positives, chosen]))
    weight = np.where(y[rows] == 1, 1.0, len(negatives) / keep)
    return rows, weight


def fit_logistic(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Pipeline, int]:
    """The logistic-regression baseline fitted on ``x``, ``y`` and the rows it saw.

    On every row, or on :func:`logistic_sample`'s weighted sample above
    :data:`LOGISTIC_MAX_ROWS` rows.
    """
    logistic = make_pipeline(
        FunctionTransformer(_signed_log),
        StandardScaler(),
        LogisticRegression(C=0.05, max_iter=5000),
    )
    sample = logistic_sample(y, seed)
    if sample is None:
        logistic.fit(x, y)
        return logistic, len(y)
    rows, weight = sample
    logistic.fit(x[rows], y[rows], logisticregression__sample_weight=weight)
    return logistic, len(rows)


def fit_slices(
    spec: ModelSpec,
    part: dict[str, Slice],
    dates: dict[str, list[date]],
    capacity: int | None = None,
    seed: int = 0,
) -> TrainedModel:
    """:func:`fit` on rows already split into train / calibrate / validate slices.

    Each slice's features are one float32 matrix; nothing here copies the training
    matrix (LightGBM bins it in place, the logistic regression takes a sample above
    :data:`LOGISTIC_MAX_ROWS`), so a fit needs little more than its rows.
    """
    for name, frame in part.items():
        positives = int(frame.keys["label"].sum()) if len(frame) else 0
        if positives < MIN_POSITIVES:
            raise TrainingError(
                f"{spec.name}: only {positives} outcomes in the {name} slice "
                f"({', '.join(d.isoformat() for d in dates[name])}); need at least "
                f"{MIN_POSITIVES} -- use a larger population or more years of history"
            )
    features = part["train"].features
    x_train = part["train"].x
    y_train = part["train"].keys["label"].to_numpy(int)
    # Small, heavily regularised trees: outcomes are rare (a few hundred in tens of
    # thousands), and deeper trees learn the noise of the training years.
    lgbm = LGBMClassifier(
        n_estimators=600,
        learning_rate=0.02,
        num_leaves=4,
        min_child_samples=min(300, max(20, len(y_train) // 100)),
        subsample=0.7,
        subsample_freq=1,
        colsample_bytree=0.3,
        reg_lambda=20.0,
        random_state=seed,
        n_jobs=1,  # OpenMP threads spin-wait on a busy machine: one is faster and steadier
        verbose=-1,
    )
    # a frame over the float32 matrix (no copy) so the model knows its feature names
    lgbm.fit(pd.DataFrame(x_train, columns=features, copy=False), y_train)
    lgbm.set_params(verbose=-1)
    x_cal = part["calibrate"].x
    y_cal = part["calibrate"].keys["label"].to_numpy(int)
    # isotonic needs many outcomes to be stable; Platt scaling copes with few
    method = "isotonic" if y_cal.sum() >= 200 else "sigmoid"
    calibrated = Calibrated(lgbm, features, method).fit(x_cal, y_cal)

    logistic, logistic_rows = fit_logistic(x_train, y_train, seed)
    rule = CountRule(spec.unit).fit(_rule_frame(part["train"]), y_train)

    val = part["validate"].frame()
    x_val = part["validate"].x
    y_val = val["label"].to_numpy(int)
    k = effective_k(capacity or spec.capacity, len(val))
    val["score_lightgbm"] = calibrated.predict_proba(x_val)[:, 1]
    val["score_logistic"] = logistic.predict_proba(x_val)[:, 1]
    val["score_count_rule"] = rule.predict_proba(val)
    metrics = {
        name: evaluate(y_val, val[f"score_{name}"].to_numpy(), k)
        for name in ("lightgbm", "logistic", "count_rule")
    }
    # the count rule's ranking is its raw count (ties broken by the person's count)
    metrics["count_rule"]["roc_auc"] = float(roc_auc_score(y_val, rule.raw(val)))
    prob_true, prob_pred = calibration_curve(
        y_val, val["score_lightgbm"], n_bins=10, strategy="quantile"
    )
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return TrainedModel(
        spec=spec,
        version=version,
        features=features,
        lgbm=lgbm,
        calibrated=calibrated,
        logistic=logistic,
        rule=rule,
        dates=dates,
        metrics=metrics,
        calibration={"mean_predicted": prob_pred.tolist(), "observed_rate": prob_true.tolist()},
        validation=val,
        k=k,
        calibration_method=method,
        extra={
            "train_rows": len(part["train"]),
            "train_positives": int(y_train.sum()),
            "calibrate_rows": len(part["calibrate"]),
            "calibrate_positives": int(y_cal.sum()),
            "logistic_rows": logistic_rows,
        },
    )


class Calibrated:
    """LightGBM's raw score mapped to a probability fitted on a later, held-out year.

    Platt scaling (a logistic on the raw log-odds) when the calibration year has few
    outcomes, isotonic regression when it has many.
    """

    def __init__(self, model: LGBMClassifier, features: list[str], method: str) -> None:
        self.model = model
        self.features = features
        self.method = method
        self.platt = LogisticRegression(C=1e6, max_iter=1000)
        self.iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """LightGBM's log-odds (what SHAP values add up to).

        Features are 4-byte floats, as the model was trained on: every engine rounds
        a unit's features the same way before scoring it.
        """
        frame = pd.DataFrame(np.asarray(x, dtype=np.float32), columns=self.features, copy=False)
        return np.asarray(self.model.predict(frame, raw_score=True), dtype=float)

    def fit(self, x: np.ndarray, y: np.ndarray) -> Calibrated:
        raw = self.raw(x)
        if self.method == "isotonic":
            self.iso.fit(raw, y)
        else:
            self.platt.fit(raw.reshape(-1, 1), y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raw = self.raw(x)
        if self.method == "isotonic":
            # isotonic regression is a step function: units on one step would tie and
            # the ranking (ROC AUC, the top k) would lose what LightGBM knows; a
            # millionth of a strictly increasing function of the raw score breaks the
            # ties in LightGBM's order without moving any probability measurably
            p = np.asarray(self.iso.predict(raw), dtype=float)
            p = p * (1 - TIE_BREAK) + TIE_BREAK / (1 + np.exp(-raw))
        else:
            p = self.platt.predict_proba(raw.reshape(-1, 1))[:, 1]
        return np.column_stack([1 - p, p])


def oracle_metrics(
    model: TrainedModel, truth_outcomes: Path, mapping: pd.DataFrame | None = None
) -> dict[str, Any] | None:
    """AUC of the generator's true probabilities on the same validation units.

    Only for a synthetic population. Without ``mapping`` the unit ids are the oracle's
    (``p<person>``/``h<household>``); otherwise ``mapping`` maps unit_id to truth_id.
    """
    import duckdb

    val = model.validation[["unit_id", "as_of", "label"]].copy()
    if mapping is None:
        val["truth_id"] = pd.to_numeric(val["unit_id"].str[1:], errors="coerce")
    else:
        val = val.merge(mapping, on="unit_id", how="inner")
    val["as_of"] = pd.to_datetime(val["as_of"]).dt.date
    con = duckdb.connect()
    con.register("val", val)
    joined = con.sql(
        f"""SELECT v.label, o.probability FROM val v
            JOIN read_parquet('{truth_outcomes}') o
              ON o.unit_id = v.truth_id AND o.window_start = v.as_of
             AND o.outcome = '{model.spec.name}'"""
    ).df()
    if joined.empty or joined["label"].nunique() < 2:
        return None
    return {
        "roc_auc": float(roc_auc_score(joined["label"], joined["probability"])),
        "brier": float(brier_score_loss(joined["label"], joined["probability"])),
        "matched_units": len(joined),
        "validation_units": len(val),
    }


def save(model: TrainedModel, models_root: Path) -> Path:
    """Write the model under ``models/risk/<model>/<version>/`` (joblib + metadata.json)."""
    folder = models_root / "risk" / model.spec.name / model.version
    folder.mkdir(parents=True, exist_ok=True)
    # scoring needs the validation year's scores (the drift check), not its features:
    # at a million people they would be hundreds of megabytes in every saved model
    kept = [c for c in model.validation.columns if c not in model.features]
    slim = model.validation[[*kept, *[c for c in SAVED_FEATURES if c in model.validation]]]
    joblib.dump(dataclasses.replace(model, validation=slim), folder / "model.joblib")
    model.lgbm.booster_.save_model(str(folder / "lightgbm.txt"))
    meta = {
        **model.summary(),
        "features": model.features,
        "metrics": model.metrics,
        "dates": {k: [d.isoformat() for d in v] for k, v in model.dates.items()},
        "calibration_method": model.calibration_method,
        **model.extra,
    }
    (folder / "metadata.json").write_text(json.dumps(meta, indent=1, default=_json_default))
    (folder.parent / "LATEST").write_text(model.version + "\n")
    return folder


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def load(models_root: Path, name: str, version: str | None = None) -> TrainedModel:
    """The saved model (the latest version unless one is named)."""
    base = models_root / "risk" / name
    if version is None:
        latest = base / "LATEST"
        if not latest.exists():
            raise TrainingError(f"model {name!r} has not been trained: run `nominal risk train`")
        version = latest.read_text().strip()
    path = base / version / "model.joblib"
    if not path.exists():
        raise TrainingError(f"model {name!r} has no version {version!r} in {base}")
    model: TrainedModel = joblib.load(path)
    return model


def versions(models_root: Path) -> list[dict[str, Any]]:
    """Every saved model version with its headline metrics (newest first per model)."""
    out = []
    for meta in sorted((models_root / "risk").glob("*/*/metadata.json"), reverse=True):
        data = json.loads(meta.read_text())
        latest = (meta.parent.parent / "LATEST").read_text().strip()
        data["latest"] = data["version"] == latest
        data["path"] = str(meta.parent)
        for key in ("features", "metrics", "dates"):
            data.pop(key, None)
        out.append(data)
    return out
