"""Search finds the right golden nominal from what a practitioner knows, imperfectly."""

from __future__ import annotations

import random
from typing import Any

import pytest
from search_town import Town

from nominal.search.engine import search
from nominal.search.query import QueryError, parse_dob, parse_postcode, parse_query


def people(town: Town, n: int = 40, seed: int = 3) -> list[dict[str, Any]]:
    """Golden records with a full name, date of birth and postcode."""
    rows = [
        r
        for r in town.index.table.select(
            ["nominal_id", "given_name", "family_name", "date_of_birth", "postcode", "display_nhs_number"]
        ).to_pylist()
        if r["given_name"] and r["family_name"] and r["date_of_birth"] and r["postcode"]
        and len(r["family_name"]) >= 4
    ]  # fmt: skip
    return random.Random(seed).sample(rows, n)


def rank_of(town: Town, nominal_id: str, **fields: Any) -> int | None:
    result = search(town.index, parse_query(**fields), limit=5)
    ids = [h.nominal_id for h in result.hits]
    return ids.index(nominal_id) if nominal_id in ids else None


def typo(word: str) -> str:
    """Two adjacent letters transposed in the middle of the word."""
    i = len(word) // 2
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def rate(ranks: list[int | None], top: int) -> float:
    return sum(1 for r in ranks if r is not None and r < top) / len(ranks)


def test_exact_details_find_the_person_first(town: Town) -> None:
    ranks = [
        rank_of(town, p["nominal_id"], given_name=p["given_name"], family_name=p["family_name"],
                dob=p["date_of_birth"].isoformat(), postcode=p["postcode"])
        for p in people(town)
    ]  # fmt: skip
    assert rate(ranks, 1) >= 0.95


def test_typo_in_family_name(town: Town) -> None:
    ranks = [
        rank_of(town, p["nominal_id"], given_name=p["given_name"],
                family_name=typo(p["family_name"]), dob=p["date_of_birth"].isoformat())
        for p in people(town)
    ]  # fmt: skip
    assert rate(ranks, 5) >= 0.9


def test_names_swapped_and_only_birth_year(town: Town) -> None:
    ranks = [
        rank_of(town, p["nominal_id"], given_name=p["family_name"], family_name=p["given_name"],
                dob=str(p["date_of_birth"].year))
        for p in people(town)
    ]  # fmt: skip
    assert rate(ranks, 5) >= 0.9


def test_nickname_finds_the_formal_name(town: Town) -> None:
    from nominal.link.standardise import nickname_rows

    nick_of: dict[str, str] = {}
    for name, canonical in nickname_rows():
        if name != canonical:
            nick_of.setdefault(canonical, name)
    found = [p for p in people(town, 300) if p["given_name"].lower() in nick_of][:20]
    assert len(found) >= 5
    ranks = [
        rank_of(town, p["nominal_id"], given_name=nick_of[p["given_name"].lower()].title(),
                family_name=p["family_name"], dob=p["date_of_birth"].isoformat())
        for p in found
    ]  # fmt: skip
    assert rate(ranks, 5) >= 0.9


def test_initial_and_postcode_sector(town: Town) -> None:
    ranks = []
    for p in people(town):
        sector = p["postcode"][:-2]
        ranks.append(
            rank_of(town, p["nominal_id"], given_name=p["given_name"][0],
                    family_name=p["family_name"], postcode=sector,
                    dob=p["date_of_birth"].isoformat())
        )  # fmt: skip
    assert rate(ranks, 5) >= 0.9


def test_postcode_sector_ranks_people_recorded_there_first(town: Town) -> None:
    p = people(town, 1)[0]
    sector = p["postcode"][:-2]
    result = search(
        town.index, parse_query(family_name=p["family_name"], postcode=sector), limit=20
    )
    assert result.hits
    assert result.hits[0].record["postcode"].startswith(sector)
    assert f"Recorded at a postcode in sector {sector}" in result.hits[0].reasons


def test_identifier_alone_finds_the_person(town: Town) -> None:
    with_nhs = [p for p in people(town, 200) if p["display_nhs_number"]][:10]
    assert with_nhs
    for p in with_nhs:
        hits = search(town.index, parse_query(nhs_number=p["display_nhs_number"]), limit=3).hits
        assert hits[0].nominal_id == p["nominal_id"]
        assert any(r.startswith("NHS number: exact match") for r in hits[0].reasons)


def test_reasons_come_from_the_model(town: Town) -> None:
    p = people(town, 1)[0]
    hit = search(
        town.index,
        parse_query(given_name=p["given_name"], family_name=p["family_name"],
                    dob=p["date_of_birth"].isoformat()),
        limit=1,
    ).hits[0]  # fmt: skip
    assert hit.nominal_id == p["nominal_id"]
    assert any(r.startswith("Date of birth: exact match (+") for r in hit.reasons)
    assert hit.score > 0.9


def test_search_scores_equal_splink_prediction(town: Town) -> None:
    """The fast path adds up exactly what Splink's own prediction SQL computes."""
    scorer = town.index.scorer
    for p in people(town, 5):
        query = scorer.standardise(
            {"given_name": p["given_name"], "family_name": typo(p["family_name"]),
             "date_of_birth": p["date_of_birth"].isoformat(), "postcode": p["postcode"]}
        )  # fmt: skip
        candidates = town.index.table.slice(0, 150)
        ours = {r["unique_id"]: r["match_weight"] for r in scorer.score(query, candidates)}
        splink = {
            r["unique_id_r"]: r["match_weight"] for r in scorer.score_with_splink(query, candidates)
        }
        assert ours.keys() == splink.keys()
        for uid, weight in splink.items():
            assert ours[uid] == pytest.approx(weight, abs=1e-6)


def test_query_parsing() -> None:
    assert parse_dob("1987")[1] is not None and parse_dob("1987")[0] is None
    assert parse_dob("14/03/1987")[0].isoformat() == "1987-03-14"  # type: ignore[union-attr]
    assert parse_dob("1987-03")[1].label == "1987-03"  # type: ignore[union-attr]
    assert parse_postcode("nx12bt") == ("NX1 2BT", None)
    assert parse_postcode("NX1 2") == (None, "NX1 2")
    assert parse_postcode("NX1") == (None, "NX1")
    with pytest.raises(QueryError, match="date of birth"):
        parse_query(dob="yesterday")
    with pytest.raises(QueryError, match="postcode"):
        parse_query(postcode="12345")
    with pytest.raises(QueryError, match="NHS number"):
        parse_query(nhs_number="123")
