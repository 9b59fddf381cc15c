"""The commands: contracts add/list, ingest --json, dq show, geography import."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from nominal.cli import app
from nominal.config import Home

from .helpers import contract_dict, good_row, write_contract, write_csv

runner = CliRunner()


def _last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def test_contracts_add_validates_and_lists(hub_home: Home, tmp_path: Path) -> None:
    good = write_contract(tmp_path / "c", contract_dict())
    result = runner.invoke(app, ["contracts", "add", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert _last_json(result.stdout)["added"] == ["test-feed"]
    assert (hub_home.root / "contracts" / "test-feed.yaml").exists()

    bad = contract_dict(feed="bad-feed")
    bad["fields"]["event_date"]["type"] = "time-of-day"
    bad_path = tmp_path / "bad" / "bad-feed.yaml"
    bad_path.parent.mkdir()
    bad_path.write_text(yaml.safe_dump(bad))
    result = runner.invoke(app, ["contracts", "add", str(bad_path.parent)])
    assert result.exit_code == 1
    assert "bad-feed.yaml" in result.output and "fields.event_date.type" in result.output
    assert "Traceback" not in result.output
    assert not (hub_home.root / "contracts" / "bad-feed.yaml").exists()

    result = runner.invoke(app, ["contracts", "list", "--json"])
    assert [c["feed"] for c in _last_json(result.stdout)["contracts"]] == ["test-feed"]


def test_ingest_json_and_dq_show(hub_home: Home, tmp_path: Path) -> None:
    added = runner.invoke(
        app, ["contracts", "add", str(write_contract(tmp_path / "c", contract_dict()))]
    )
    assert added.exit_code == 0, added.output
    bad = good_row(2)
    bad["NHS"] = "1234567890"
    feed = write_csv(tmp_path / "in" / "test_1.csv", [good_row(1), bad])
    result = runner.invoke(app, ["ingest", str(feed), "--json"])
    assert result.exit_code == 0, result.output
    summary = _last_json(result.stdout)
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_quarantined"]) == (2, 1, 1)
    delivery = summary["deliveries"][0]["delivery_id"]

    result = runner.invoke(app, ["dq", "show", delivery[:10], "--json"])
    assert result.exit_code == 0, result.output
    report = _last_json(result.stdout)
    assert report["fields"]["nhs_number"]["invalid"] == 1
    assert report["quarantine_reasons"] == [
        {"field": "nhs_number", "reason": "nhs_number_invalid", "rows": 1}
    ]
    html = Path(report["path"]).with_suffix(".html").read_text()
    assert "nhs_number_invalid" in html and "<script" not in html
    listed = runner.invoke(app, ["dq", "show", "--json"])
    assert len(_last_json(listed.stdout)["reports"]) == 1
    missing = runner.invoke(app, ["dq", "show", "nope"])
    assert missing.exit_code == 1


def test_geography_import_cli(hub_home: Home, tmp_path: Path) -> None:
    pcs = tmp_path / "postcodes.csv"
    pcs.write_text(
        "pcd,pcds,oa21cd,wd24cd,lat,long\n"
        "NX1 2JW,NX1 2JW,E00900001,E05900001,54.38,-0.95\n"
        "NX12PX,NX1 2PX,E00900002,E05900001,54.39,-0.96\n"
    )
    oas = tmp_path / "oa.geojson"
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    oas.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"OA21CD": code, "LSOA21CD": "E01900001"},
         "geometry": square} for code in ("E00900001", "E00900002")]}))  # fmt: skip
    dep = tmp_path / "imd.csv"
    dep.write_text("lsoa21cd,imd_score,imd_decile\nE01900001,31.5,2\n")
    result = runner.invoke(app, ["geography", "import", "--postcodes", str(pcs),
                                 "--output-areas", str(oas), "--deprivation", str(dep), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _last_json(result.stdout) | {"snapshot": None} == {
        "ok": True, "postcodes": 2, "output_areas": 2, "wards": 0, "snapshot": None,
    }  # fmt: skip
    from .helpers import query

    assert query(hub_home, "SELECT oa_code, ward_code, imd_decile FROM reference.output_areas ORDER BY 1") == [
        ("E00900001", "E05900001", 2), ("E00900002", "E05900001", 2),
    ]  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("postcode_x,lat\nNX1 2JW,1\n")
    result = runner.invoke(
        app, ["geography", "import", "--postcodes", str(bad), "--output-areas", str(oas)]
    )
    assert result.exit_code == 1 and "bad.csv" in result.output and "Traceback" not in result.output
