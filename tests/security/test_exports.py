"""CSV/formula injection: every CSV the hub exports is escaped.

A property test proves :func:`escape_cell` leaves no cell starting with a formula
trigger after a spreadsheet-style parse, and a source scan proves every module that
writes CSV uses the escaping writer (the synthetic generator is exempt: it imitates
partner feeds, which are inputs to the hub, not exports from it).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nominal.security.exports import FORMULA_TRIGGERS, csv_text, escape_cell

SRC = Path(__file__).resolve().parents[2] / "src" / "nominal"
CSV_WRITING = re.compile(r"csv\.writer|DictWriter|\.to_csv\(|text/csv|FORMAT\s*\(?\s*'?csv", re.I)
EXEMPT = {"synth", "security"}  # synth writes partner inputs; security is the escaper itself


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                st.text(),
                st.sampled_from(
                    [
                        "=1+1",
                        "+1",
                        "-1",
                        "@SUM(A1)",
                        "\t=1",
                        " =1",
                        "\r=1",
                        "＝1",
                        "=cmd|'/C calc'!A0",
                    ]
                ),
                st.integers(),
                st.none(),
            ),
            min_size=1,
            max_size=5,
        ),
        max_size=5,
    )
)
def test_no_exported_cell_starts_a_formula(rows: list[list[object]]) -> None:
    text = csv_text([f"c{i}" for i in range(5)], rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert len(parsed) == len(rows) + 1
    for original, row in zip(rows, parsed[1:], strict=True):
        for value, cell in zip(original, row, strict=False):
            if isinstance(value, str):
                assert not cell.lstrip(" \t\r\n").startswith(FORMULA_TRIGGERS), cell
                # the value is still readable: only a leading quote was added
                assert cell in (value, "'" + value)


def test_numbers_are_not_mangled() -> None:
    assert escape_cell(-3) == "-3"
    assert escape_cell(2.5) == "2.5"
    assert escape_cell("-3") == "'-3"
    assert escape_cell("O'Neil") == "O'Neil"


def test_every_csv_export_in_the_hub_is_escaped() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        area = path.relative_to(SRC).parts[0]
        if area in EXEMPT:
            continue
        text = path.read_text(encoding="utf-8")
        if CSV_WRITING.search(text) and "nominal.security.exports" not in text:
            offenders.append(str(path.relative_to(SRC)))
    assert not offenders, f"CSV written without nominal.security.exports: {offenders}"
