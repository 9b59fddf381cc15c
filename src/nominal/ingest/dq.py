"""Data-quality report per delivery: completeness, validity, distinct values, reasons.

The figures come from one aggregate over the staged table the pipeline has already
built, so the report costs no extra read of the file. Each report is written as JSON
(for machines and for the comparison with the next delivery of the same feed) and as a
small self-contained HTML page under ``$NOMINAL_HOME/reports/dq/<feed>/``.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from nominal.config import Home
from nominal.contracts.model import Contract
from nominal.engines.duck import sql_literal


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def delivery_stats(
    con: duckdb.DuckDBPyConnection, contract: Contract, fields: list[str]
) -> dict[str, Any]:
    """Counts over the staged table of one delivery (one pass)."""
    aggs = ["count(*)", "count(*) FILTER (__ok)", "count(*) FILTER (__expired)"]
    for f in fields:
        aggs += [f"count({_q('v_' + f)})", f"approx_count_distinct({_q('v_' + f)})"]
    row = con.execute(f"SELECT {', '.join(aggs)} FROM staged").fetchone()
    assert row is not None
    rows_in, accepted, expired = int(row[0]), int(row[1]), int(row[2])
    # Invalid values per field, from the reasons of the (few) quarantined rows.
    invalid_aggs = ", ".join(
        f"count(*) FILTER (starts_with(__reasons, {sql_literal(f + ': ')}) "
        f"OR contains(__reasons, {sql_literal('; ' + f + ': ')}))"
        for f in fields
    )
    invalid = con.execute(
        f"SELECT {invalid_aggs} FROM staged WHERE __reasons IS NOT NULL"
    ).fetchone()
    assert invalid is not None
    per_field: dict[str, dict[str, Any]] = {}
    for i, f in enumerate(fields):
        filled, distinct = row[3 + 2 * i : 5 + 2 * i]
        errors = int(invalid[i])
        per_field[f] = {
            "completeness": round(filled / rows_in, 4) if rows_in else None,
            "validity": round(1 - errors / rows_in, 4) if rows_in else None,
            "filled": int(filled),
            "invalid": errors,
            "distinct": int(distinct),
            "personal": contract.is_personal(f),
        }
    reasons = con.execute(
        """SELECT split_part(r, ':', 1) AS field, trim(split_part(r, ':', 2)) AS code,
                  count(*) AS n
           FROM (SELECT unnest(string_split(coalesce(__reasons,
                 'event_date: retention_expired'), '; ')) AS r FROM staged WHERE NOT __ok)
           GROUP BY ALL ORDER BY n DESC, field, code"""
    ).fetchall()
    return {
        "rows_in": rows_in,
        "rows_accepted": accepted,
        "rows_quarantined": rows_in - accepted,
        "rows_expired": expired,
        "fields": per_field,
        "quarantine_reasons": [{"field": f, "reason": c, "rows": int(n)} for f, c, n in reasons],
    }


def reports_dir(home: Home) -> Path:
    return home.reports / "dq"


def _previous(folder: Path, feed: str, delivery_id: str) -> dict[str, Any] | None:
    """The latest earlier report of the same feed, to show the change."""
    best: dict[str, Any] | None = None
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("feed") != feed or data.get("delivery_id") == delivery_id:
            continue
        if best is None or (data.get("received_at"), data.get("file_name")) > (
            best.get("received_at"),
            best.get("file_name"),
        ):
            best = data
    return best


def write_report(
    home: Home,
    contract: Contract,
    file_name: str,
    delivery_id: str,
    received_at: datetime,
    stats: dict[str, Any],
) -> Path:
    folder = reports_dir(home) / contract.feed
    folder.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "delivery_id": delivery_id,
        "feed": contract.feed,
        "dataset": contract.dataset,
        "partner": contract.partner.code,
        "file_name": file_name,
        "received_at": received_at.isoformat(),
        **stats,
    }
    prev = _previous(folder, contract.feed, delivery_id)
    if prev is not None:
        report["previous_delivery"] = prev["delivery_id"]
        report["change"] = {
            f: {
                "completeness": round(v["completeness"] - prev["fields"][f]["completeness"], 4)
                if v["completeness"] is not None
                and prev["fields"].get(f, {}).get("completeness") is not None
                else None,
                "validity": round(v["validity"] - prev["fields"][f]["validity"], 4)
                if v["validity"] is not None
                and prev["fields"].get(f, {}).get("validity") is not None
                else None,
            }
            for f, v in stats["fields"].items()
            if f in prev.get("fields", {})
        }
        report["quarantined_share_change"] = round(_share(stats) - _share(prev), 4)
    stem = f"{Path(file_name).stem}-{delivery_id[:12]}"
    json_path = folder / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=1))
    (folder / f"{stem}.html").write_text(render_html(report), encoding="utf-8")
    return json_path


def _share(stats: dict[str, Any]) -> float:
    return stats["rows_quarantined"] / stats["rows_in"] if stats["rows_in"] else 0.0


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render_html(report: dict[str, Any]) -> str:
    """A plain, self-contained page (no scripts, no external assets)."""
    e = html.escape
    change = report.get("change", {})
    rows = []
    for name, f in report["fields"].items():
        delta = change.get(name, {}).get("completeness")
        rows.append(
            f"<tr><td>{e(name)}</td><td>{'yes' if f['personal'] else 'no'}</td>"
            f"<td>{_pct(f['completeness'])}</td><td>{_pct(f['validity'])}</td>"
            f"<td>{f['distinct']:,}</td><td>{f['invalid']:,}</td>"
            f"<td>{'' if delta is None else f'{100 * delta:+.1f} pts'}</td></tr>"
        )
    reasons = (
        "".join(
            f"<tr><td>{e(r['field'])}</td><td>{e(r['reason'])}</td><td>{r['rows']:,}</td></tr>"
            for r in report["quarantine_reasons"]
        )
        or "<tr><td colspan=3>No rows quarantined.</td></tr>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Data quality: {e(report["file_name"])}</title>
<style>body{{font-family:Arial,sans-serif;margin:2em;color:#0b0c0c}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border-bottom:1px solid #b1b4b6;
padding:.3em .8em;text-align:left}}th{{background:#f3f2f1}}</style></head><body>
<h1>Data quality: {e(report["file_name"])}</h1>
<p>Feed <strong>{e(report["feed"])}</strong> ({e(report["dataset"])}, partner
{e(report["partner"])}), received {e(report["received_at"])}.<br>
Delivery {e(report["delivery_id"])}</p>
<p>Rows in: <strong>{report["rows_in"]:,}</strong>; accepted {report["rows_accepted"]:,};
quarantined {report["rows_quarantined"]:,} (of which past retention
{report["rows_expired"]:,}).</p>
<h2>Fields</h2>
<table><tr><th>field</th><th>personal</th><th>completeness</th><th>validity</th>
<th>distinct (approx.)</th><th>invalid rows</th><th>completeness change</th></tr>
{"".join(rows)}</table>
<h2>Quarantine reasons</h2>
<table><tr><th>field</th><th>reason</th><th>rows</th></tr>{reasons}</table>
</body></html>
"""


def list_reports(home: Home) -> list[dict[str, Any]]:
    out = []
    for path in sorted(reports_dir(home).glob("*/*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        data["path"] = str(path)
        out.append(data)
    out.sort(key=lambda d: (d.get("received_at", ""), d.get("file_name", "")))
    return out
