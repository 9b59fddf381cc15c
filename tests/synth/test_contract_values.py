"""Every value in every delivery fits its contract, except the rows made invalid on purpose."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq
from synth_reading import read_delivery

from nominal.contracts import load_contracts
from nominal.synth import SynthSummary
from nominal.synth.population import nhs_check_digit


def _fits(value: object, spec, fmt: str | None) -> bool:
    if isinstance(value, str) and spec.mapping and value in spec.mapping:
        value = spec.mapping[value]
    if spec.type == "category":
        return str(value).lower() in {v.lower() for v in spec.values}
    if spec.type == "boolean":
        return value in (True, False, "true", "false")
    if spec.type == "integer":
        return isinstance(value, int) or str(value).lstrip("-").isdigit()
    if spec.type == "number":
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    if spec.type == "date":
        if isinstance(value, (date, datetime)):
            return True
        try:
            datetime.strptime(str(value), spec.format or fmt or "%Y-%m-%d")
        except ValueError:
            return False
        return True
    return isinstance(value, str)


def test_values_fit_their_contracts(town: tuple[Path, SynthSummary]) -> None:
    out, _ = town
    records = pq.read_table(out / "truth" / "records.parquet").to_pandas()
    invalid = {
        (r.delivery_file, r.source_record_id): r.invalid_reason
        for r in records[records.invalid_reason.notna()].itertuples()
    }
    checked = 0
    for contract in load_contracts(out / "contracts"):
        for path in sorted((out / "feeds").iterdir()):
            if not contract.matches(path.name):
                continue
            for row in read_delivery(path, contract):
                rid = str(row[contract.fields["record_id"].source])
                reason = invalid.get((path.name, rid))
                for name, spec in contract.fields.items():
                    if spec.source is None:
                        continue
                    value = row[spec.source]
                    if value is None or value == "":
                        assert not (spec.required and reason is None), (path.name, rid, name)
                        continue
                    ok = _fits(value, spec, contract.format.date_format)
                    if name == "nhs_number":
                        ok = int(
                            nhs_check_digit(__import__("numpy").array([int(value[:9])]))[0]
                        ) == int(value[9])
                    if name == "postcode":
                        ok = (
                            " " in str(value) or len(str(value)) <= 4
                        )  # outward code alone is valid
                    if not ok:
                        assert reason is not None, (path.name, rid, name, value)
                    checked += 1
    assert checked > 100_000
