"""Model cards: what a model is for, how good it really is, and for whom it works worse.

One card per trained model version, as JSON (for machines and the web app) and as a
self-contained HTML page (inline styles and an inline SVG calibration chart, nothing
fetched from anywhere), in ``$NOMINAL_HOME/reports/model-cards/``. Every figure on
the card is computed in the training run that produced the model.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from nominal.insight.describe import feature_table
from nominal.insight.specs import COMMON_LIMITATIONS, HUMAN_OVERSIGHT
from nominal.insight.training import TrainedModel

MODEL_LABELS = {
    "lightgbm": "Gradient-boosted trees (LightGBM, calibrated) — the model",
    "logistic": "Logistic regression (baseline)",
    "count_rule": "Count of agencies involved (baseline rule)",
}


def _clean(value: Any) -> Any:
    """NaN is not JSON: report it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def build_card(
    model: TrainedModel,
    fairness: dict[str, Any],
    importance: list[dict[str, Any]],
    data: dict[str, Any],
) -> dict[str, Any]:
    spec = model.spec
    lg, lr, rule = (model.metrics[n] for n in ("lightgbm", "logistic", "count_rule"))
    beats = [
        name
        for name, other in (("logistic regression", lr), ("count-of-agencies rule", rule))
        if not (lg["roc_auc"] > other["roc_auc"])
    ]
    verdict = (
        "The model ranks better (ROC AUC) than both baselines on the validation year."
        if not beats
        else "Warning: the model does not rank better than the "
        + " or the ".join(beats)
        + " on the validation year; prefer the simpler method."
    )
    oracle = model.metrics.get("oracle")
    card = {
        "card_version": 1,
        "model": spec.name,
        "title": spec.title,
        "version": model.version,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "unit": spec.unit,
        "population": spec.population,
        "outcome": spec.outcome,
        "outcome_window_months": spec.window_months,
        "intended_use": spec.intended_use,
        "misuse": spec.misuse,
        "human_oversight": HUMAN_OVERSIGHT,
        "limitations": [*spec.limitations, *COMMON_LIMITATIONS],
        "data": {
            **data,
            "as_of_dates": {k: [d.isoformat() for d in v] for k, v in model.dates.items()},
            "split": "temporal: trained on the earliest years, calibrated on the next, "
            "validated on the latest complete year",
            **model.extra,
            "validation_rows": int(model.metrics["lightgbm"]["n"]),
            "validation_positives": int(model.metrics["lightgbm"]["positives"]),
            "features": feature_table(model.features),
        },
        "method": {
            "model": "LightGBM gradient-boosted trees",
            "calibration": f"{model.calibration_method} on the held-out calibration year",
            "baselines": ["logistic regression on the same features", "count of agencies involved"],
            "explanations": "SHAP TreeExplainer contributions, top factors shown in words",
        },
        "team_capacity": spec.capacity,
        "k": model.k,
        "metrics": {name: model.metrics[name] for name in ("lightgbm", "logistic", "count_rule")},
        "oracle": oracle,
        "model_to_oracle_auc": (lg["roc_auc"] / oracle["roc_auc"]) if oracle else None,
        "verdict": verdict,
        "calibration_curve": model.calibration,
        "fairness": fairness,
        "importance": importance,
    }
    cleaned: dict[str, Any] = _clean(card)
    return cleaned


def _svg_calibration(curve: dict[str, list[float]]) -> str:
    """An inline SVG reliability diagram (predicted vs observed), axes 0..max."""
    xs, ys = curve["mean_predicted"], curve["observed_rate"]
    top = max([*xs, *ys, 0.01]) * 1.05
    w, h, pad = 320, 320, 40

    def px(v: float) -> float:
        return pad + (w - 2 * pad) * v / top

    def py(v: float) -> float:
        return h - pad - (h - 2 * pad) * v / top

    points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    dots = "".join(
        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="#1d70b8"/>'
        for x, y in zip(xs, ys, strict=True)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="Calibration curve: predicted probability against observed rate">'
        f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="#f3f2f1"/>'
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(top)}" y2="{py(top)}" stroke="#b1b4b6" '
        f'stroke-dasharray="4 4"/>'
        f'<polyline points="{points}" fill="none" stroke="#1d70b8" stroke-width="2"/>{dots}'
        f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle" font-size="12">predicted probability '
        f"(0 to {top:.2f})</text>"
        f'<text x="12" y="{h / 2}" font-size="12" transform="rotate(-90 12 {h / 2})" '
        f'text-anchor="middle">observed rate</text></svg>'
    )


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_html(card: dict[str, Any]) -> str:
    env = Environment(
        loader=PackageLoader("nominal.insight", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    env.filters["fmt"] = _fmt
    template = env.get_template("insight/model_card.html.j2")
    return template.render(
        card=card, labels=MODEL_LABELS, svg=_svg_calibration(card["calibration_curve"])
    )


def card_paths(reports: Path, model: str, version: str) -> tuple[Path, Path]:
    folder = reports / "model-cards"
    return folder / f"{model}-{version}.json", folder / f"{model}-{version}.html"


def write_card(reports: Path, card: dict[str, Any]) -> tuple[Path, Path]:
    """Write the card's JSON and HTML, and ``<model>.json/.html`` for the latest version."""
    json_path, html_path = card_paths(reports, card["model"], card["version"])
    json_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(card, indent=1)
    html = render_html(card)
    json_path.write_text(text)
    html_path.write_text(html)
    (json_path.parent / f"{card['model']}.json").write_text(text)
    (json_path.parent / f"{card['model']}.html").write_text(html)
    return json_path, html_path


def read_card(reports: Path, model: str) -> dict[str, Any]:
    path = reports / "model-cards" / f"{model}.json"
    if not path.exists():
        raise FileNotFoundError(f"no model card for {model!r}: run `nominal risk train`")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
