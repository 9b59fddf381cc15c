"""The insight commands, run through the real CLI on a copy of the trained hub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from insight_fixtures import Trained
from typer.testing import CliRunner

from nominal.cli import app
from nominal.config import home as make_home
from nominal.govern.demo import seed_demo


@pytest.fixture(scope="module")
def hub(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "home"
    shutil.copytree(trained.home.root, root)
    # the demo governance: users of every role, purposes and agreements
    seed_demo(make_home(root).ensure(), trained.town / "contracts")
    return root


def _audit(hub: Path) -> list[dict[str, Any]]:
    engine = sa.create_engine(make_home(hub).database_url)
    with engine.connect() as con:
        rows = con.execute(
            sa.text(
                "SELECT action, outcome, username, purpose, dataset, nominal_ids, client, detail "
                "FROM audit_log ORDER BY seq"
            )
        ).mappings()
        out = [dict(r) for r in rows]
    engine.dispose()
    for r in out:
        r["nominal_ids"] = json.loads(r["nominal_ids"])
        r["detail"] = json.loads(r["detail"])
    return out


def _run(hub: Path, *args: str, code: int = 0) -> dict[str, object]:
    result = CliRunner().invoke(app, [*args, "--json"], env={"NOMINAL_HOME": str(hub)})
    assert result.exit_code == code, result.output
    last = result.stdout.strip().splitlines()[-1]
    data: dict[str, object] = json.loads(last)
    return data


def test_features_build(hub: Path) -> None:
    out = _run(hub, "features", "build", "--as-of", "2025-10-31", "--as-of", "2026-10-31")
    rows = out["rows"]
    assert isinstance(rows, dict)
    assert rows["gold.features_person"] > 9000
    assert rows["gold.features_area"] > 0


def test_train_score_card_cohorts(hub: Path, trained: Trained) -> None:
    out = _run(
        hub, "risk", "train", "--model", "cin_cp_escalation", "--truth", str(trained.town / "truth")
    )
    (model,) = out["models"]  # type: ignore[misc]
    assert model["trained"] and model["oracle_roc_auc"] > 0.7
    assert model["roc_auc"] > model["count_rule_roc_auc"]

    listed = _run(hub, "models")["models"]
    assert listed == _run(hub, "risk", "models")["models"]
    assert isinstance(listed, list)
    latest = [m for m in listed if m["model"] == "cin_cp_escalation" and m["latest"]]
    assert latest and latest[0]["version"] == model["version"]

    card = _run(hub, "risk", "card", "cin_cp_escalation")
    assert card["version"] == model["version"]
    assert Path(str(card["html"])).exists()

    scored = _run(hub, "score", "--as-of", "2026-10-31")
    assert scored["as_of"] == "2026-10-31"
    cohorts = _run(hub, "cohorts", "list")["cohorts"]
    assert isinstance(cohorts, list)
    names = {c["cohort"] for c in cohorts}
    assert "cin-cp-escalation" in names
    before = len(_audit(hub))
    shown = _run(
        hub, "cohorts", "show", "cin-cp-escalation", "--limit", "5",
        "--purpose", "safeguarding_children", "--as", "pat.practitioner",
    )  # fmt: skip
    members = shown["members"]
    assert isinstance(members, list) and len(members) == 5
    assert shown["size"] <= shown["capacity"]  # type: ignore[operator]
    assert all(m["reasons"] and m["unit_pseudo"] for m in members)
    assert all("unit_id" not in m for m in members)  # pseudonyms only
    # the read is audited like the web cohort view: who, why, which dataset, whom it showed
    (entry,) = _audit(hub)[before:]
    assert entry["action"] == "read"
    assert (entry["outcome"], entry["username"], entry["purpose"], entry["dataset"]) == (
        "allowed", "pat.practitioner", "safeguarding_children", "cin_cp_plans",
    )  # fmt: skip
    assert entry["client"] == "cli" and entry["detail"]["cohort"] == "cin-cp-escalation"
    assert len(entry["nominal_ids"]) == 5 and entry["detail"]["members"] == 5
    assert shown["audit_seq"] == before + 1


def test_cohort_show_needs_a_purpose_and_an_agreement(hub: Path) -> None:
    # no purpose, no user: refused before anything is read
    result = CliRunner().invoke(
        app, ["cohorts", "show", "da-escalation", "--json"], env={"NOMINAL_HOME": str(hub)}
    )
    assert result.exit_code == 2 and "--purpose" in result.output
    before = len(_audit(hub))
    out = _run(
        hub, "cohorts", "show", "da-escalation", "--purpose", "research", "--as", "nobody", code=1
    )
    assert "unknown user" in str(out["error"])
    out = _run(
        hub, "cohorts", "show", "da-escalation", "--purpose", "crystal_ball",
        "--as", "pat.practitioner", code=1,
    )  # fmt: skip
    assert "unknown purpose" in str(out["error"])
    assert len(_audit(hub)) == before  # nothing was read
    # an information-governance lead is not a recipient of the agreement: denied, audited
    ig = "iris.ig"
    out = _run(
        hub, "cohorts", "show", "da-escalation", "--purpose", "domestic_abuse", "--as", ig, code=3
    )
    assert "access denied" in str(out["error"]) and "members" not in out
    (entry,) = _audit(hub)[before:]
    assert (entry["action"], entry["outcome"], entry["dataset"], entry["nominal_ids"]) == (
        "read", "denied", "domestic_abuse", [],
    )  # fmt: skip
    assert entry["detail"]["reasons"]


def test_clear_errors(hub: Path) -> None:
    out = _run(hub, "features", "build", "--as-of", "31/10/2025", code=1)
    assert "YYYY-MM-DD" in str(out["error"])
    out = _run(hub, "risk", "train", "--model", "crystal_ball", code=1)
    assert "unknown model" in str(out["error"])
    out = _run(hub, "cohorts", "show", "nobody", "--purpose", "research", "--as", "x", code=1)
    assert "no cohort 'nobody'" in str(out["error"])
    out = _run(hub, "risk", "card", "child_exploitation", code=1)
    assert "no model card" in str(out["error"])


def test_empty_lake_is_a_clear_error(tmp_path: Path) -> None:
    out = _run(tmp_path / "empty", "risk", "train", code=1)
    assert "empty" in str(out["error"])
