"""People mentioned in documents, matched to nominals (checked against the synthetic truth)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from nominal.config import Home
from nominal.ingest.api import ingest_paths
from nominal.mentions import find_mentions, mentions_for
from nominal.mentions.find import extract
from nominal.pipeline.runner import run_pipeline


def test_extract_names_dates_addresses_and_nhs_numbers() -> None:
    text = (
        "Strategy meeting minutes\nDate: 24/04/2022\nAuthor: Children's Social Care\n\n"
        "Subject: Simeon Njuki (date of birth 19/10/2019), living at Flat 1, 9 Ansboro Avenue, "
        "Kettleby NX1 5HB.\nNHS number 967 389 0447.\n"
        "Also present: Lynn Njuki, born 6 January 1993, who shares the address.\n"
        "Concerns were discussed about Simeon's school attendance."
    )
    found = extract("doc1", "minutes.pdf", text, {"njuki", "care"})
    assert [(m.text, str(m.date_of_birth), m.postcode, m.nhs_number) for m in found] == [
        ("Simeon Njuki", "2019-10-19", "NX1 5HB", "9673890447"),
        ("Lynn Njuki", "1993-01-06", "NX1 5HB", None),
    ]
    assert found[0].address_line_1 == "Flat 1"
    assert "living at Flat 1" in found[0].passage
    # an invalid NHS check digit is not an NHS number; unknown family names are not people
    assert extract("d", "f", "Sam Jones NHS 123 456 7890", {"jones"})[0].nhs_number is None
    assert extract("d", "f", "Kettleby Primary Care Network", {"jones"}) == []


def test_mentions_stage_matches_the_truth(
    prepared_hub: Callable[[str | None], Home], small_town: Path
) -> None:
    home = prepared_hub(None)
    ingest_paths(home, [small_town / "documents"])
    report = run_pipeline(home, ["mentions"])
    assert report.ok, report.error
    summary = find_mentions(home)
    truth = pd.read_parquet(small_town / "truth" / "document_mentions.parquet")
    expected = {
        (r.document, f"p{r.person_id}") for r in truth.itertuples() if r.mention_kind == "name"
    }
    found = set()
    for _doc, nominal in expected:
        for m in mentions_for(home, nominal):
            found.add((m["file_name"], nominal))
            assert m["score"] >= 0.9 and m["passage"]
    assert found == expected  # every person named in a document, on the right nominal
    assert summary["matched"] == len(expected)  # and nobody else
    assert mentions_for(home, "p-nobody") == []


def test_no_documents_is_not_a_failure(prepared_hub: Callable[[str | None], Home]) -> None:
    home = prepared_hub(None)  # oracle gold, no documents ingested
    report = run_pipeline(home, ["mentions"])
    assert report.ok and report.stages[0]["outputs"] == {}
