"""Charts as Vega-Lite specifications built with Altair, each with its table and CSV.

A chart on a page is three things: the Vega-Lite JSON (drawn in the browser by
vega-embed from the hub's own copy), the same rows as an accessible HTML table (the
table view, which is also what a page shows without JavaScript) and a CSV download
of those rows. :class:`Chart` keeps the three together so they cannot disagree.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

from nominal.security.exports import escaping_writer  # formula-safe CSV cells

PALETTE = [
    "#1d70b8",
    "#d4351c",
    "#00703c",
    "#f47738",
    "#4c2c92",
    "#85994b",
    "#b58840",
    "#912b88",
    "#28a197",
    "#6f72af",
    "#f499be",
    "#505a5f",
]  # GOV.UK colours


@dataclass
class Chart:
    key: str
    title: str
    description: str
    columns: list[tuple[str, str]]  # (field, heading)
    rows: list[dict[str, Any]]
    spec: dict[str, Any]

    def csv(self) -> str:
        out = io.StringIO()
        writer = escaping_writer(out)
        writer.writerow([field for field, _ in self.columns])
        for row in self.rows:
            writer.writerow([_cell(row.get(field)) for field, _ in self.columns])
        return out.getvalue()

    def spec_json(self) -> str:
        # Safe inside <script type="application/json">: no "</" can close the element.
        return json.dumps(self.spec, default=str).replace("</", "<\\/")


def _cell(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _frame(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c for c, _ in columns])
    for col in frame.columns:
        if frame[col].map(lambda v: hasattr(v, "isoformat")).any():
            frame[col] = frame[col].map(_cell)
    return frame


def _spec(chart: Any, title: str, description: str) -> dict[str, Any]:
    spec: dict[str, Any] = chart.properties(
        title=title, description=description, width="container"
    ).to_dict()
    spec.pop("$schema", None)
    spec["config"] = {"font": "Arial, sans-serif", "view": {"stroke": None}}
    return spec


def bar(
    key: str,
    title: str,
    rows: list[dict[str, Any]],
    category: str,
    value: str,
    headings: tuple[str, str],
    description: str,
    color: str | None = None,
    limit: int = 30,
) -> Chart:
    """A horizontal bar chart of ``value`` by ``category`` (largest first)."""
    columns = [(category, headings[0]), (value, headings[1])]
    if color:
        columns.insert(0, (color, color.replace("_", " ").capitalize()))
    shown = rows[:limit]
    enc: dict[str, Any] = {
        "y": alt.Y(f"{category}:N", sort="-x", title=headings[0]),
        "x": alt.X(f"{value}:Q", title=headings[1]),
    }
    if color:
        enc["color"] = alt.Color(
            f"{color}:N", scale=alt.Scale(range=PALETTE), legend=alt.Legend(title=None)
        )
    else:
        enc["color"] = alt.value(PALETTE[0])
    chart = alt.Chart(_frame(shown, columns)).mark_bar().encode(**enc)
    return Chart(key, title, description, columns, rows, _spec(chart, title, description))


def stacked_months(key: str, title: str, rows: list[dict[str, Any]], description: str) -> Chart:
    """Events by month, stacked by agency."""
    columns = [("month", "Month"), ("agency", "Agency"), ("events", "Events")]
    chart = (
        alt.Chart(_frame(rows, columns))
        .mark_bar()
        .encode(
            x=alt.X("month:O", title="Month"),
            y=alt.Y("events:Q", title="Events", stack="zero"),
            color=alt.Color(
                "agency:N", scale=alt.Scale(range=PALETTE), legend=alt.Legend(title="Agency")
            ),
        )
    )
    return Chart(key, title, description, columns, rows, _spec(chart, title, description))


def interval(key: str, title: str, rows: list[dict[str, Any]], description: str) -> Chart:
    """Point estimates with 95% intervals (benefits realisation), one row per measure."""
    columns = [
        ("label", "Measure"),
        ("estimate", "Effect per family"),
        ("low", "95% CI low"),
        ("high", "95% CI high"),
        ("rag", "RAG"),
    ]
    frame = _frame(rows, columns)
    base = alt.Chart(frame)
    chart = alt.layer(
        base.mark_rule(color="#505a5f").encode(
            y=alt.Y("label:N", title="Measure"),
            x=alt.X("low:Q", title="Change per family (after − before)"),
            x2="high:Q",
        ),
        base.mark_point(filled=True, size=80, color=PALETTE[0]).encode(y="label:N", x="estimate:Q"),
        alt.Chart(pd.DataFrame({"zero": [0]}))
        .mark_rule(strokeDash=[4, 4], color="#0b0c0c")
        .encode(x="zero:Q"),
    )
    return Chart(key, title, description, columns, rows, _spec(chart, title, description))
