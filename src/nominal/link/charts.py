"""Linking quality charts for analysts, as Vega-Lite JSON and self-contained HTML.

Written to ``$NOMINAL_HOME/reports/linkage/`` after each link run:

- ``match_weights`` and ``m_u_parameters``: Splink's charts of the trained model (how
  much each level of each comparison counts for or against a match);
- ``cluster_sizes``: how many nominals have 1, 2, 3, ... records;
- ``uncertain_pairs``: the distribution of match probabilities in the review band.

The HTML pages inline the Vega libraries the web app vendors from npm (nothing is
fetched from a CDN); without them the page still carries the JSON specification.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import duckdb

from nominal.config import Home
from nominal.link import model as link_model

VENDOR = Path(__file__).resolve().parent.parent / "web" / "static" / "vendor" / "vega"


def _html(title: str, spec: dict[str, Any]) -> str:
    scripts = ""
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        path = VENDOR / name
        if path.exists():
            scripts += f"<script>{path.read_text(encoding='utf-8')}</script>\n"
    body = json.dumps(spec).replace("</", "<\\/")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title>{scripts}</head><body><h1>{title}</h1><div id='chart'></div>"
        f"<script type='application/json' id='spec'>{body}</script>"
        "<script>if (window.vegaEmbed) { vegaEmbed('#chart', "
        "JSON.parse(document.getElementById('spec').textContent), {actions: false}); }"
        "</script></body></html>"
    )


def _save(folder: Path, name: str, title: str, spec: dict[str, Any]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{name}.json"
    html_path = folder / f"{name}.html"
    json_path.write_text(json.dumps(spec, indent=1, default=str))
    html_path.write_text(_html(title, spec), encoding="utf-8")
    return [json_path, html_path]


def model_charts(home: Home, model: link_model.LinkModel) -> list[Path]:
    """Splink's match-weights and m/u charts of ``model``."""
    from splink import DuckDBAPI, Linker

    con = duckdb.connect()
    con.execute("CREATE TABLE empty_input AS SELECT 'x' AS unique_id").fetchall()
    linker = Linker(
        DuckDBAPI(con).register("empty_input"),
        dict(model.settings),
        log_level=logging.ERROR,
        validate_settings=False,
    )
    folder = home.reports / "linkage"
    written: list[Path] = []
    charts: dict[str, tuple[str, Any]] = {
        "match_weights": ("Match weights of the linkage model",
                          linker.visualisations.match_weights_chart()),
        "m_u_parameters": ("m and u probabilities of the linkage model",
                           linker.visualisations.m_u_parameters_chart()),
    }  # fmt: skip
    for name, (title, chart) in charts.items():
        spec: dict[str, Any] = dict(chart.chart_dict)
        written += _save(folder, name, f"{title} (version {model.version})", spec)
    con.close()
    return written


def run_charts(home: Home, con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Cluster sizes and uncertain pairs of the latest run (``con``: its gold tables)."""
    folder = home.reports / "linkage"
    sizes = con.execute(
        """SELECT n AS records, count(*) AS nominals FROM
           (SELECT nominal_id, count(*) AS n FROM gold.nominal_records GROUP BY 1)
           GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    size_spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "description": "Number of nominals by number of source records",
        "data": {"values": [{"records": r, "nominals": n} for r, n in sizes]},
        "mark": "bar",
        "encoding": {
            "x": {"field": "records", "type": "ordinal", "title": "records per nominal"},
            "y": {"field": "nominals", "type": "quantitative", "scale": {"type": "symlog"}},
        },
    }
    bands = con.execute(
        """SELECT round(match_probability, 2) AS p, count(*) AS pairs FROM gold.pairs
           WHERE decision = 'review' OR model_decision = 'review' GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    band_spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "description": "Pairs in the clerical review band by match probability",
        "data": {"values": [{"match_probability": p, "pairs": n} for p, n in bands]},
        "mark": "bar",
        "encoding": {
            "x": {"field": "match_probability", "type": "quantitative", "bin": False},
            "y": {"field": "pairs", "type": "quantitative"},
        },
    }
    return _save(folder, "cluster_sizes", "Cluster size distribution", size_spec) + _save(
        folder, "uncertain_pairs", "Uncertain pairs (review band)", band_spec
    )
