"""Clerical review on SQLite and PostgreSQL: decisions override the model on later
runs (incremental and full), a split rectifies a wrong merge with lineage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nominal.cli import app
from nominal.config import home as make_home
from nominal.link.pipeline import resolve, table_rows

runner = CliRunner()


def _cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assignments(home) -> dict[str, str]:
    return {r["record_key"]: r["nominal_id"] for r in table_rows(home, "gold.nominal_records")}


@pytest.fixture(params=["sqlite", "postgres"])
def review_home(request, linked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the linked home, its control plane on SQLite or PostgreSQL."""
    source, _summary = linked
    root = tmp_path / "home"
    shutil.copytree(source.root, root)
    monkeypatch.setenv("NOMINAL_HOME", str(root))
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("NOMINAL_DATABASE_URL", url)
    else:
        monkeypatch.delenv("NOMINAL_DATABASE_URL", raising=False)
    return make_home(root)


def test_decisions_override_the_model_and_split_rectifies(review_home) -> None:
    home = review_home
    before = _assignments(home)
    groups: dict[str, list[str]] = {}
    for key, nominal in before.items():
        groups.setdefault(nominal, []).append(key)
    pair_nominal = sorted(n for n, ks in groups.items() if len(ks) == 2)[0]
    a, b = sorted(groups[pair_nominal])
    singles = sorted(n for n, ks in groups.items() if len(ks) == 1)
    c, d = groups[singles[0]][0], groups[singles[1]][0]

    # non-match on a linked pair separates it; match on two strangers joins them
    _cli(
        "review",
        "decide",
        "non_match",
        "--records",
        f"{a},{b}",
        "--by",
        "rev1",
        "--reason",
        "different people: checked with the school",
    )
    _cli(
        "review",
        "decide",
        "match",
        "--records",
        f"{c},{d}",
        "--by",
        "rev1",
        "--reason",
        "same person: confirmed by the GP practice",
    )
    out = _cli("link", "--incremental")
    assert out["mode"] == "incremental"
    after = _assignments(home)
    assert after[a] != after[b]
    assert after[c] == after[d]
    assert pair_nominal in (after[a], after[b])  # the larger side keeps the id
    lineage = table_rows(home, "gold.nominal_lineage", f"run_id = '{out['run_id']}'")
    kinds = {(r["kind"], r["from_nominal_id"]) for r in lineage}
    assert ("split", pair_nominal) in kinds
    vanished = {singles[0], singles[1]} - {after[c]}
    assert len(vanished) == 1
    gone = vanished.pop()
    assert ("merged", gone) in kinds and ("forwarded", gone) in kinds
    assert resolve(gone, home) == after[c]

    # a full run (and a retrained model would too) still honours both decisions
    _cli("link", "--full")
    again = _assignments(home)
    assert again[a] != again[b] and again[c] == again[d]

    # split a nominal with several records: the chosen record leaves, with lineage
    big = sorted((n for n, ks in groups.items() if len(ks) >= 4 and n != pair_nominal))[0]
    big_now = resolve(big, home)
    members = sorted(k for k, n in again.items() if n == big_now)
    out = _cli(
        "review",
        "split",
        big_now,
        "--records",
        members[0],
        "--by",
        "ig-lead",
        "--reason",
        "rectification request 42",
    )
    final = _assignments(home)
    assert final[members[0]] != final[members[1]]
    assert final[members[1]] == big_now
    split_rows = table_rows(
        home, "gold.nominal_lineage", f"kind = 'split' AND from_nominal_id = '{big_now}'"
    )
    assert {r["to_nominal_id"] for r in split_rows} >= {final[members[0]]}


def test_review_queue_lists_uncertain_pairs(linked, monkeypatch: pytest.MonkeyPatch) -> None:
    home, summary = linked
    monkeypatch.setenv("NOMINAL_HOME", str(home.root))
    monkeypatch.delenv("NOMINAL_DATABASE_URL", raising=False)
    listed = _cli("review", "list", "--limit", "5")
    assert len(listed["items"]) == min(5, summary["review_queued"])
    for item in listed["items"]:
        assert 0.5 <= item["match_probability"] < 0.99
    bad = runner.invoke(
        app, ["review", "decide", "maybe", "--item", "1", "--by", "x", "--reason", "y", "--json"]
    )
    assert bad.exit_code != 0
    assert "decision must be one of" in bad.output
