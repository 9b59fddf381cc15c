"""Why a unit got its score: SHAP contributions turned into plain words.

TreeExplainer gives, for each scored unit, how much each feature moved LightGBM's
log-odds away from the average; the contributions and the average add up exactly to
the model's raw score (tests/insight check this). The calibrated probability is a
monotone function of that raw score, so the factors that raise the raw score are the
factors that raise the probability. The top factors are shown in words
(:mod:`nominal.insight.describe`) wherever a score is shown.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shap

from nominal.insight.describe import describe
from nominal.insight.training import TrainedModel


@dataclass(frozen=True)
class Explanation:
    base_value: float  # average log-odds
    contributions: np.ndarray  # units x features, log-odds
    raw_scores: np.ndarray  # LightGBM log-odds per unit


def shap_values(model: TrainedModel, frame: pd.DataFrame) -> Explanation:
    # 4-byte floats, as the model was trained and scores (training.Calibrated.raw)
    x = pd.DataFrame(frame[model.features].to_numpy(np.float32), columns=model.features)
    explainer = shap.TreeExplainer(model.lgbm)
    with warnings.catch_warnings():
        # SHAP warns that LightGBM's binary output format changed; both are handled below
        warnings.simplefilter("ignore", UserWarning)
        values = explainer.shap_values(x)
    if isinstance(values, list):  # older SHAP: one array per class
        values = values[1]
    values = np.asarray(values, dtype=float)
    if values.ndim == 3:
        values = values[:, :, 1]
    base = explainer.expected_value
    base_value = float(np.atleast_1d(base)[-1])
    raw = model.calibrated.raw(x.to_numpy())
    return Explanation(base_value, values, raw)


def reasons(
    model: TrainedModel, frame: pd.DataFrame, top: int = 3
) -> tuple[Explanation, list[list[dict[str, Any]]]]:
    """The ``top`` factors raising each unit's score, in words, with their contributions."""
    exp = shap_values(model, frame)
    values = frame[model.features].to_numpy(np.float32)
    out: list[list[dict[str, Any]]] = []
    for i in range(len(frame)):
        row = exp.contributions[i]
        order = np.argsort(-row)[:top]
        out.append(
            [
                {
                    "feature": model.features[j],
                    "value": _plain(values[i, j]),
                    "contribution": round(float(row[j]), 4),
                    "text": describe(model.features[j], _plain(values[i, j])),
                }
                for j in order
                if row[j] > 0
            ]
        )
    return exp, out


def _plain(value: np.float32) -> float:
    """A 4-byte feature value as the shortest decimal that is that value (0.1, not
    0.10000000149011612)."""
    return float(str(value))


def importance(
    model: TrainedModel, frame: pd.DataFrame, top: int = 15, sample: int = 3000
) -> list[dict[str, Any]]:
    """Mean absolute SHAP contribution per feature (the model card's global view).

    Measured on a fixed random sample of at most ``sample`` units: the ordering of the
    top features is stable long before every unit is explained.
    """
    from nominal.insight.describe import label

    if len(frame) > sample:
        frame = frame.sample(sample, random_state=0)
    exp = shap_values(model, frame)
    mean = np.abs(exp.contributions).mean(axis=0)
    order = np.argsort(-mean)[:top]
    return [
        {
            "feature": model.features[j],
            "description": label(model.features[j]),
            "mean_abs_shap": float(mean[j]),
        }
        for j in order
    ]
