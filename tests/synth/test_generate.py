"""The generator: determinism, layout, contracts and readable deliveries."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from synth_reading import read_delivery

from nominal.contracts import load_contracts
from nominal.contracts.model import contract_for
from nominal.synth import SynthSummary, generate


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_files_and_other_seed_differs(
    town: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    out, summary = town
    again = tmp_path / "again"
    generate(again, summary.people, seed=summary.seed)
    first, second = _digests(out), _digests(again)
    assert first.keys() == second.keys()
    different = [k for k in first if first[k] != second[k]]
    assert different == []
    other = tmp_path / "other"
    generate(other, summary.people, seed=summary.seed + 1)
    third = _digests(other)
    feeds = [k for k in first if k.startswith("feeds/") and k in third]
    assert feeds
    assert sum(first[k] != third[k] for k in feeds) == len(feeds)


def test_layout_and_summary(town: tuple[Path, SynthSummary]) -> None:
    out, summary = town
    for sub in ("feeds", "contracts", "documents", "truth", "geography"):
        assert (out / sub).is_dir()
    assert summary.people == 2500
    assert len(summary.records) >= 16
    assert all(n > 0 for n in summary.records.values()), summary.records
    assert summary.total_records == sum(summary.records.values())
    truth = pq.read_table(out / "truth" / "records.parquet")
    assert truth.num_rows == summary.total_records
    files = [p for p in (out / "feeds").iterdir()]
    assert len({p.suffix for p in files}) == 4  # csv, ndjson, xlsx, parquet


def test_every_delivery_matches_one_contract_and_reads_as_declared(
    town: tuple[Path, SynthSummary],
) -> None:
    out, summary = town
    contracts = [c for c in load_contracts(out / "contracts") if c.format.type != "document"]
    assert len(contracts) == len(summary.records)
    truth = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    per_file = truth.groupby("delivery_file").size().to_dict()
    encodings = set()
    delimiters = set()
    for path in sorted((out / "feeds").iterdir()):
        matching = [c for c in contracts if c.matches(path.name)]
        assert len(matching) == 1, path.name
        contract = matching[0]
        assert contract_for(path.name, contracts) is contract
        rows = read_delivery(path, contract)
        assert len(rows) == per_file[path.name], path.name
        header = set(rows[0])
        missing = set(contract.source_columns) - header
        assert not missing, f"{path.name}: mapped columns absent: {missing}"
        ids = {str(r[contract.fields["record_id"].source]) for r in rows}
        expected = set(truth.loc[truth.delivery_file == path.name, "source_record_id"])
        assert ids == expected, path.name
        encodings.add(contract.format.encoding)
        delimiters.add(contract.format.delimiter)
    assert {"cp1252", "utf-8-sig", "utf-8"} <= encodings
    assert len(delimiters) >= 4


def test_date_formats_vary_between_partners(town: tuple[Path, SynthSummary]) -> None:
    out, _ = town
    formats = {c.format.date_format for c in load_contracts(out / "contracts")}
    assert {"%d/%m/%Y", "%Y-%m-%d", "%Y%m%d", "%m/%d/%Y"} <= formats


def test_cli_writes_json_summary_last(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nominal.cli import app

    result = CliRunner().invoke(
        app, ["synth", "--people", "300", "--seed", "3", "--out", str(tmp_path / "t"), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["people"] == 300
    assert summary["files"] > 20
    assert (tmp_path / "t" / "truth" / "parameters.json").exists()


@pytest.mark.parametrize("args", [["--as-of", "31/10/2026"], ["--people", "3"], ["--years", "1"]])
def test_cli_rejects_bad_options_with_a_message(tmp_path: Path, args: list[str]) -> None:
    from typer.testing import CliRunner

    from nominal.cli import app

    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "t"), "--json", *args])
    assert result.exit_code != 0
    assert json.loads(result.stdout.strip().splitlines()[-1])["ok"] is False


def test_period_follows_as_of_and_years(tmp_path: Path) -> None:
    from datetime import date

    summary = generate(tmp_path / "t", 400, seed=5, as_of=date(2024, 2, 29), years=3)
    outcomes = pq.read_table(tmp_path / "t" / "truth" / "outcomes.parquet").to_pandas()
    starts = sorted(set(outcomes.window_start))
    assert [str(s) for s in starts] == ["2021-02-28", "2022-02-28", "2023-02-28"]
    records = pq.read_table(tmp_path / "t" / "truth" / "records.parquet").to_pandas()
    assert str(records.event_date.max()) < "2024-02-29"
    assert summary.years == 3 and summary.as_of == "2024-02-29"
