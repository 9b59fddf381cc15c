"""Nothing is lost: every row of a delivery is accepted or quarantined, exactly once."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nominal.config import home as make_home
from nominal.ingest import ingest_paths

from .helpers import COLUMNS, contract_dict, good_row, query, write_contract, write_csv

# Values that are valid, plausibly wrong, or hostile to a CSV parser.
TEXT = st.text(alphabet=st.sampled_from(list("abcXYZ019 -'/,;|\"\t\n\rłéß")), max_size=12)
FIELD_VALUES = {
    "NHS": st.one_of(st.sampled_from(["9434765919", "9434765918", "943 476 5919", ""]), TEXT),
    "Postcode": st.one_of(st.sampled_from(["NX1 2JW", "nx12jw", "NX1", "NX1-HR9", ""]), TEXT),
    "EventDate": st.one_of(st.sampled_from(["15/03/2024", "30/02/2024", "2024-03-15", ""]), TEXT),
    "DOB": st.one_of(st.sampled_from(["01/02/1990", "31/04/1990", ""]), TEXT),
    "Sex": st.one_of(st.sampled_from(["1", "2", "M", "x", "9", ""]), TEXT),
    "Outcome": st.one_of(st.sampled_from(["open", "CLOSED", "maybe"]), TEXT),
    "Score": st.one_of(st.sampled_from(["1", "2.0", "2.5", "-3"]), TEXT),
    "Forename": TEXT,
    "Email": st.one_of(st.sampled_from(["a@b.co", "nope"]), TEXT),
}


@st.composite
def rows(draw: st.DrawFn) -> list[dict[str, str]]:
    n = draw(st.integers(min_value=1, max_value=25))
    out = []
    for i in range(n):
        row = good_row(i)
        for column in draw(st.sets(st.sampled_from(sorted(FIELD_VALUES)), max_size=4)):
            row[column] = draw(FIELD_VALUES[column])
        if draw(st.booleans()) and draw(st.booleans()):
            row["Ref"] = ""  # required id missing
        out.append(row)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=rows())
def test_rows_in_equals_accepted_plus_quarantined(data: list[dict[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home = make_home(root / "home").ensure()
        write_contract(root / "contracts", contract_dict())
        feed = write_csv(root / "in" / "test_1.csv", data)
        summary = ingest_paths(home, [feed], contracts=root / "contracts")
        (d,) = summary.deliveries
        assert d.status == "ingested", d.message
        assert d.rows_in == len(data)
        assert d.rows_in == d.rows_accepted + d.rows_quarantined
        accepted = {r[0] for r in query(home, "SELECT row_number FROM silver.identity")}
        quarantined = [r[0] for r in query(home, "SELECT row_number FROM silver.quarantine")]
        assert len(set(quarantined)) == len(quarantined) == d.rows_quarantined
        assert accepted.isdisjoint(quarantined)
        assert accepted | set(quarantined) == set(range(1, len(data) + 1))
        # row numbers point at the right source rows
        for number, raw_ref in query(
            home, "SELECT row_number, json_extract_string(raw, '$.Ref') FROM silver.quarantine"
        ):
            assert (raw_ref or "") == data[number - 1]["Ref"].strip()
        for number, ref in query(home, "SELECT row_number, source_record_id FROM silver.identity"):
            assert ref == data[number - 1]["Ref"]
        (deliveries,) = query(
            home, "SELECT rows_in, rows_accepted, rows_quarantined FROM silver.deliveries"
        )
        assert deliveries == (d.rows_in, d.rows_accepted, d.rows_quarantined)


def test_large_delivery_keeps_file_order(tmp_path: Path) -> None:
    """Row numbers stay right when DuckDB reads a file in parallel chunks."""
    home = make_home(tmp_path / "home").ensure()
    write_contract(tmp_path / "contracts", contract_dict())
    data = [good_row(i) for i in range(60_000)]
    for i in range(0, 60_000, 997):
        data[i]["NHS"] = "1234567890"
    feed = write_csv(tmp_path / "in" / "test_1.csv", data)
    summary = ingest_paths(home, [feed], contracts=tmp_path / "contracts")
    assert summary.rows_quarantined == len(range(0, 60_000, 997))
    got = query(home, "SELECT row_number, json_extract_string(raw, '$.Ref') FROM silver.quarantine")
    assert all(ref == f"R{n - 1:06d}" for n, ref in got)
    bad = query(
        home,
        "SELECT count(*) FROM silver.identity WHERE source_record_id <> 'R' || lpad((row_number - 1)::VARCHAR, 6, '0')",
    )
    assert bad == [(0,)]


assert COLUMNS  # the helper's column order is the file's
