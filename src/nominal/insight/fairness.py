"""For whom does a model work worse? Group metrics by sex, ethnicity and deprivation.

Measured with fairlearn's MetricFrame on the validation year at the team's capacity
(top k flagged): how many in each group are flagged, what share of the group's real
outcomes the top k catches (recall), and how often a flag is right (precision). The
largest recall gap between groups with enough outcomes to measure is highlighted in
the model card.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, selection_rate
from sklearn.metrics import precision_score, recall_score, roc_auc_score

MIN_GROUP_POSITIVES = 5  # groups with fewer outcomes are shown but not used for the gap
GAP_THRESHOLD = 0.10  # recall gaps at least this large are highlighted

# ONS 2021 high-level groups from the three coding schemes partners use
_DFE = {"W": "White", "M": "Mixed", "A": "Asian", "B": "Black", "C": "Asian", "O": "Other"}
_NHS = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    "R": "Asian",
    "S": "Other",
}


def ethnic_group(code: object) -> str:
    """ONS 2021 five-group ethnicity from an ONS (``W1``), DfE (``WBRI``) or NHS (``A``) code."""
    if not isinstance(code, str) or not code.strip():
        return "Not known"
    c = code.strip().upper()
    if c in {"NS", "NOBT", "Z", "REFU", "NOT STATED", "99"}:
        return "Not known"
    if len(c) == 1:
        return _NHS.get(c, "Not known")
    if len(c) == 2 and c[1].isdigit():  # ONS 2021, e.g. W1, A2
        return {"W": "White", "M": "Mixed", "A": "Asian", "B": "Black", "O": "Other"}.get(
            c[0], "Not known"
        )
    return _DFE.get(c[0], "Not known")


def deprivation_group(decile: float) -> str:
    if not decile or (isinstance(decile, float) and math.isnan(decile)):
        return "Not known"
    d = int(decile)
    low = 2 * ((d - 1) // 2) + 1
    label = f"deciles {low}-{low + 1}"
    if low == 1:
        label += " (most deprived)"
    if low == 9:
        label += " (least deprived)"
    return label


def groups(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": frame["sex"].map(lambda s: {"M": "Male", "F": "Female"}.get(s, "Not known")),
            "ethnicity": frame["ethnicity"].map(ethnic_group),
            "deprivation": frame["a_imd_decile"].map(deprivation_group),
        },
        index=frame.index,
    )


def _positives(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sum(y_true))


def _precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(precision_score(y_true, y_pred, zero_division=0))


def _recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(recall_score(y_true, y_pred, zero_division=0)) if np.sum(y_true) else math.nan


def fairness(frame: pd.DataFrame, score_column: str, k: int) -> dict[str, Any]:
    """Group metrics of the top ``k`` by ``score_column`` on the validation rows."""
    y = frame["label"].to_numpy(int)
    order = np.argsort(-frame[score_column].to_numpy(float), kind="stable")
    flag = np.zeros(len(frame), dtype=int)
    flag[order[:k]] = 1
    g = groups(frame)
    out: dict[str, Any] = {"k": k, "attributes": {}}
    for attribute in g.columns:
        mf = MetricFrame(
            metrics={
                "units": count,
                "outcomes": _positives,
                "flagged_rate": selection_rate,
                "recall_at_k": _recall,
                "precision_at_k": _precision,
            },
            y_true=y,
            y_pred=flag,
            sensitive_features=g[attribute],
        )
        table = mf.by_group.reset_index().rename(columns={attribute: "group"})
        aucs = {}
        for name, part in frame.groupby(g[attribute]):
            labels = part["label"].to_numpy(int)
            aucs[name] = (
                float(roc_auc_score(labels, part[score_column]))
                if 0 < labels.sum() < len(labels)
                else math.nan
            )
        table["roc_auc"] = table["group"].map(aucs)
        measurable = table[table["outcomes"] >= MIN_GROUP_POSITIVES]
        gap = (
            float(measurable["recall_at_k"].max() - measurable["recall_at_k"].min())
            if len(measurable) >= 2
            else math.nan
        )
        rows = []
        for r in table.to_dict("records"):
            rows.append(
                {
                    "group": str(r["group"]),
                    "units": int(r["units"]),
                    "outcomes": int(r["outcomes"]),
                    "flagged_rate": float(r["flagged_rate"]),
                    "recall_at_k": float(r["recall_at_k"]),
                    "precision_at_k": float(r["precision_at_k"]),
                    "roc_auc": float(r["roc_auc"]),
                    "measurable": bool(r["outcomes"] >= MIN_GROUP_POSITIVES),
                }
            )
        worst = (
            measurable.sort_values("recall_at_k").iloc[0]["group"] if len(measurable) >= 2 else None
        )
        out["attributes"][attribute] = {
            "groups": rows,
            "recall_gap": gap,
            "highlight": bool(not math.isnan(gap) and gap >= GAP_THRESHOLD),
            "lowest_recall_group": None if worst is None else str(worst),
            "fairlearn_recall_difference": float(mf.difference()["recall_at_k"]),
        }
    gaps = [a["recall_gap"] for a in out["attributes"].values() if not math.isnan(a["recall_gap"])]
    out["largest_recall_gap"] = max(gaps) if gaps else math.nan
    return out
