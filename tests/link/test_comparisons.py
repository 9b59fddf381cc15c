"""Comparison levels: which level a pair of standardised records falls in.

Levels are checked through Splink itself (``compare_two_records`` with the model's
settings, no training needed: the level a pair takes does not depend on m and u).
"""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker

from nominal.link import settings as link_settings
from nominal.link.standardise import standardise

COLUMNS = ("record_key", "given_name", "family_name", "date_of_birth", "street_number",
           "address_line_1", "postcode")  # fmt: skip
RECORDS = {
    "jack": ("Jack", "Ryan", "1980-01-02", "4", "Mill Lane", "AB1 2CD"),
    "ryan": ("Ryan", "Jack", "1955-06-07", "70", "Bushby Close", "ZZ9 9ZZ"),
    "emily": ("Emily", "Stronach", "1983-04-23", "555", "Hodgkinson Street", "3199"),
    "ethan": ("Stronach", "Ethan", "1983-04-23", "555", "Hodgkinson Street", "3199"),
    "cooper": ("Cooepr", "Cadwallader", "1956-09-18", "48", "McKillop Circuit", "4175"),
    "cadw": ("Cadwalwlader", "Cooper", "1956-09-18", "48", "Mckillopc Ircuit", "4165"),
    "typo": ("Raquel", "Staude", "1970-01-01", "44", "Merv Waite Street", "3078"),
    "typo2": ("Raquel", "Staude", "1970-01-01", "44", "Ebdens Treet", "3087"),
    "flat": ("Joel", "Bishop", "1960-01-01", "10", "French Street Cedarview", "3223"),
    "flat2": ("Joel", "Bishop", "1960-01-01", "10", "French Street", "3223"),
    "neighbour": ("Joel", "Bishop", "1960-01-01", "13", "Palmer Street", "3223"),
    "house": ("Zachary", "White", "1991-02-03", "16", "Walker Crescent", "2250"),
    "house2": ("Zachary", "White", "1991-02-03", "16", "Walkercerscent", "3066"),
}


@pytest.fixture(scope="module")
def compare() -> Any:
    con = duckdb.connect()
    rows = {c: [] for c in COLUMNS}  # type: dict[str, list[Any]]
    for key, values in RECORDS.items():
        for column, value in zip(COLUMNS, (key, *values), strict=True):
            rows[column].append(value)
    con.register("raw", pa.table(rows))
    standardise(con, "raw", "std", present=set(COLUMNS))
    rel = con.sql("SELECT * FROM std")
    std = {r[0]: dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()}
    linker = Linker(
        DuckDBAPI(con).register("std"), link_settings.settings(), log_level=logging.ERROR
    )

    def levels(a: str, b: str) -> dict[str, str]:
        """Comparison name -> label of the level the pair (a, b) takes."""
        row = linker.inference.score_pairs([std[a]], [std[b]]).as_record_list()[0]
        settings = linker._settings_obj
        out = {}
        for comparison in settings.comparisons:
            gamma = row[f"gamma_{comparison.output_column_name}"]
            level = next(
                lv for lv in comparison.comparison_levels if lv.comparison_vector_value == gamma
            )
            out[comparison.output_column_name] = level.label_for_charts
        return out

    return levels


def test_a_swap_counts_once(compare: Any) -> None:
    got = compare("jack", "ryan")
    assert got["given_name"] == "Given and family names swapped"
    assert got["family_name"] == "All other comparisons"


def test_one_name_in_the_others_place(compare: Any) -> None:
    got = compare("emily", "ethan")
    assert got["given_name"] == "One name recorded in the other's place"
    assert got["family_name"] == "All other comparisons"
    misspelt = compare("cooper", "cadw")
    assert misspelt["given_name"].startswith("One name in the other's place, Jaro-Winkler")


def test_postcode_one_character_out(compare: Any) -> None:
    assert compare("typo", "typo2")["address"] == ("Same house number, postcode one character out")
    assert compare("house", "house2")["address"] == "Same house number, little else"


def test_same_home_written_differently_beats_a_neighbour(compare: Any) -> None:
    assert compare("flat", "flat2")["address"] == (
        "Same postcode and house number, address differs"
    )
    assert compare("flat", "neighbour")["address"] == "Same postcode, address differs"
    assert compare("jack", "ryan")["address"] == "All other comparisons"


def test_levels_render_for_spark() -> None:
    sql = " ".join(
        level["sql_condition"]
        for comparison in link_settings.settings().get_settings("spark").as_dict()["comparisons"]
        for level in comparison["comparison_levels"]
    )
    assert "jaro_winkler(" in sql and "jaro_winkler_similarity" not in sql


def test_em_samples_records_above_its_size(linked, monkeypatch) -> None:
    """Above ``EM_RECORDS`` records EM really samples (Splink samples only with a
    pair cap); at or below it every blocked pair is compared, as before."""
    import duckdb

    from nominal.engines.lake import Lake
    from nominal.link import model as link_model

    home, _summary = linked
    std = Lake(home.lake).require_current().read("link.standardised")
    con = duckdb.connect()
    con.register("std_arrow", std)
    con.execute("CREATE TABLE std_all AS SELECT * FROM std_arrow")
    n = std.num_rows

    _trained, _tf, whole = link_model.train(con, "std_all")
    assert whole["em_sample_proportion"] == 1.0 and whole["em_max_pairs"] is None
    assert not any(s.get("sampling_applied") for s in whole["em_sampling"])

    monkeypatch.setattr(link_model, "EM_RECORDS", n // 2)
    monkeypatch.setattr(link_model, "EM_MAX_PAIRS", 200.0)
    _trained, _tf, part = link_model.train(con, "std_all")
    assert part["em_sample_proportion"] == pytest.approx((n // 2) / n)
    assert part["em_max_pairs"] == 200.0
    for session in part["em_sampling"]:
        assert session["sampling_applied"] is True
        assert session["estimated_total_pairs"] > 200
        assert 0 < session["p_star"] < 1
