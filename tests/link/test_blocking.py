"""Profile blocking (``nominal.link.blocking``) scores exactly the pairs, to exactly the
weights, that Splink's own ``predict`` over the records gives; the shipped blocking
rules are symmetric (a profile holds records on both sides of the key order)."""

from __future__ import annotations

import re

import duckdb
import pytest
from splink import DuckDBAPI

from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.link import blocking
from nominal.link import model as link_model
from nominal.link.pipeline import _pairs_select


@pytest.fixture(scope="module")
def std(linked) -> tuple[duckdb.DuckDBPyConnection, link_model.LinkModel]:
    home, _summary = linked
    con = duck.connect(Lake(home.lake).require_current(), tables=["link.standardised"])
    con.execute("CREATE TABLE std_all AS SELECT * EXCLUDE (std_received_at) FROM link.standardised")
    return con, link_model.load(home)


def _swap_sides(rule: str) -> str:
    return re.sub(r"\b([lr])\.", lambda m: "r." if m.group(1) == "l" else "l.", rule)


def _pairs(con: duckdb.DuckDBPyConnection, rules: list[str]) -> set[tuple[str, str]]:
    union = " UNION ".join(
        f"SELECT l.unique_id, r.unique_id FROM std_all l JOIN std_all r "
        f"ON ({rule}) AND l.unique_id < r.unique_id"
        for rule in rules
    )
    return set(con.execute(union).fetchall())


def test_rules_are_symmetric(std) -> None:
    con, _model = std
    rules = blocking.rule_sqls()
    as_written = _pairs(con, rules)
    assert len(as_written) > 1000
    assert _pairs(con, [_swap_sides(r) for r in rules]) == as_written


def test_an_asymmetric_rule_would_be_caught(std) -> None:
    con, _model = std
    rules = ["l.given_std = r.family_std AND l.postcode_district = r.postcode_district"]
    assert _pairs(con, rules) != _pairs(con, [_swap_sides(r) for r in rules])


def test_profiles_score_the_same_pairs_as_splink_over_records(std) -> None:
    con, model = std
    sizes = blocking.build_profiles(con, "std_all")
    assert sizes["profiles"] < sizes["records"]  # people recur with identical details
    blocking.block(con, blocking.rule_sqls())
    api = DuckDBAPI(con)
    linker = link_model.linker_for(api, blocking.PROFILES, model)
    linker.table_management.register_blocked_pairs_for_predict(api.register(blocking.BLOCKED))
    pred = linker.inference.predict(threshold_match_probability=0.2, warning_mode="never")
    con.execute(
        "CREATE TABLE by_profile_raw AS "
        + _pairs_select(pred.physical_name, "r", "v", blocking.PROFILES, ordered=False)
    )
    con.execute("CREATE TABLE by_profile AS " + blocking.expand_sql("by_profile_raw"))

    # Splink alone, over the records, with the same rules
    settings = dict(model.settings)
    settings["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": r, "sql_dialect": "duckdb"} for r in blocking.rule_sqls()
    ]
    plain = link_model.LinkModel(model.version, settings, model.tf, model.meta)
    linker2 = link_model.linker_for(DuckDBAPI(con), "std_all", plain)
    pred2 = linker2.inference.predict(threshold_match_probability=0.2, warning_mode="never")
    con.execute("CREATE TABLE by_record AS " + _pairs_select(pred2.physical_name, "r", "v"))

    total, only_profile, only_record, weight_differs, decision_differs = con.execute(
        """SELECT count(*), count(*) FILTER (b.record_key_l IS NULL),
                  count(*) FILTER (a.record_key_l IS NULL),
                  count(*) FILTER (abs(a.match_weight - b.match_weight) > 1e-9),
                  count(*) FILTER (a.model_decision <> b.model_decision)
           FROM by_profile a FULL JOIN by_record b USING (record_key_l, record_key_r)"""
    ).fetchall()[0]
    assert total > 1000
    assert (only_profile, only_record, weight_differs, decision_differs) == (0, 0, 0, 0)
    # self-pairs were needed: some kept pairs lie inside one profile
    inside = con.execute(
        "SELECT count(*) FROM by_profile_raw WHERE record_key_l = record_key_r"
    ).fetchall()[0][0]
    assert inside > 0


def test_replayed_prediction_sql_scores_as_splink(std, tmp_path) -> None:
    """Splink's prediction statements, recorded once (:mod:`nominal.link.compiled`)
    and replayed on another connection without Splink, give the same predictions."""
    from nominal.config import home as make_home
    from nominal.link import compiled

    con, model = std
    blocking.build_profiles(con, "std_all")
    rules = blocking.rule_sqls()
    blocking.block(con, rules)
    made = compiled.record(con, model, blocking.PROFILES, blocking.BLOCKED, rules)
    assert made.complete and any(step[0] == "register" for step in made.steps)
    by_splink = con.sql(f"SELECT * FROM {made.output}").to_arrow_table()
    assert by_splink.num_rows > 1000

    # saved with the model, found again by its fingerprint, replayed on a connection
    # holding only the same profiles and blocked pairs
    home = make_home(tmp_path / "home").ensure()
    (home.models / "linkage").mkdir(parents=True)
    key = compiled.fingerprint(con, model, blocking.PROFILES)
    compiled.save(home, model, key, made)
    assert compiled.any_for(home, model.version)
    other = duckdb.connect()
    for table in (blocking.PROFILES, blocking.BLOCKED):
        other.register(f"{table}_arrow", con.sql(f"SELECT * FROM {table}").to_arrow_table())
        other.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_arrow")
    assert compiled.fingerprint(other, model, blocking.PROFILES) == key
    loaded = compiled.load(home, model, key)
    assert loaded is not None and loaded.rules == rules
    output = compiled.replay(other, model, loaded)
    other.register("by_splink", by_splink)
    differ = other.execute(
        f"""SELECT count(*) FROM (
            (SELECT * FROM {output} EXCEPT ALL SELECT * FROM by_splink)
            UNION ALL (SELECT * FROM by_splink EXCEPT ALL SELECT * FROM {output}))"""
    ).fetchall()[0][0]
    assert differ == 0
    assert other.execute(f"SELECT count(*) FROM {output}").fetchall()[0][0] == by_splink.num_rows
    # another model version or other columns: another fingerprint
    other.execute(
        f"CREATE OR REPLACE TABLE {blocking.PROFILES} AS SELECT *, 1 AS extra FROM {blocking.PROFILES}_arrow"
    )
    assert compiled.fingerprint(other, model, blocking.PROFILES) != key


def _split_old_new(con: duckdb.DuckDBPyConnection) -> None:
    """``std_old`` (about 90% of the records) and ``std_new`` (the rest), as an
    incremental run has them."""
    con.execute(
        "CREATE OR REPLACE TABLE std_new AS SELECT * FROM std_all WHERE hash(unique_id) % 10 = 0"
    )
    con.execute(
        "CREATE OR REPLACE TABLE std_old AS SELECT * FROM std_all WHERE hash(unique_id) % 10 <> 0"
    )


def _blocked(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str, str]]:
    return set(con.execute(f"SELECT * FROM {blocking.BLOCKED}").fetchall())


def test_rule_keys_are_parsed_from_the_rules(std) -> None:
    con, _model = std
    keys = blocking.index_keys(con, blocking.rule_sqls(), "std_all")
    assert keys is not None and len(keys) == len(blocking.rule_sqls())
    swap = next(k for k in keys if "l.given_std = r.family_std AND l.family_std" in k.rule)
    # each side's key holds that side's expressions, in the rule's order
    assert swap.left.index("given_std") < swap.left.index("family_std")
    assert swap.right.index("family_std") < swap.right.index("given_std")
    dates = next(k for k in keys if "MONTH(l.dob)" in k.rule)
    assert "MONTH(dob)" in dates.left and "MONTH(dob)" in dates.right
    # no key for what is not a conjunction of equalities of one type
    assert blocking.index_keys(con, ["l.dob = r.dob OR l.sex = r.sex"], "std_all") is None
    assert blocking.index_keys(con, ["l.dob_year < r.dob_year"], "std_all") is None
    assert blocking.index_keys(con, ["l.dob = r.dob_str"], "std_all") is None
    assert blocking.index_keys(con, ["l.sex = 'F'"], "std_all") is None


def test_saved_blocking_index_gives_the_pairs_of_recomputed_blocking(std) -> None:
    """An incremental run blocking through the saved keys of the earlier records gets
    exactly the profile pairs, with the same first rule, as joining the new profiles to
    every earlier record's columns; and the earlier records it reads whole are those
    pairs' records."""
    con, _model = std
    rules = blocking.rule_sqls()
    _split_old_new(con)
    con.execute(
        "CREATE OR REPLACE VIEW std_mixed AS SELECT * FROM std_old UNION ALL SELECT * FROM std_new"
    )
    blocking.build_profiles(con, "std_mixed", "std_new")
    blocking.block(con, rules, incremental=True)
    recomputed = _blocked(con)
    assert len(recomputed) > 1000
    assert {k for k, _, _ in recomputed} >= {"0", "4", "6"}  # identifiers, names, dates

    keys = blocking.index_keys(con, rules, blocking.PROFILES)
    assert keys is not None
    con.execute(f"CREATE OR REPLACE TABLE saved AS {blocking.index_sql(keys, 'std_old')}")
    assert blocking.block_indexed(con, keys, "saved", "std_old") == len(recomputed)
    assert _blocked(con) == recomputed
    # the scored profiles: every new one and the earlier records of some pair
    earlier = {r for _, _l, r in recomputed} - {
        r[0] for r in con.execute("SELECT unique_id FROM link_profiles_new").fetchall()
    }
    scored = {r[0] for r in con.execute(f"SELECT unique_id FROM {blocking.PROFILES}").fetchall()}
    news = {r[0] for r in con.execute("SELECT unique_id FROM link_profiles_new").fetchall()}
    assert earlier <= scored - news
    candidates = {r[0] for r in con.execute("SELECT r FROM link_candidates").fetchall()}
    assert scored - news == candidates - news
    assert len(scored - news) < con.execute("SELECT count(*) FROM std_old").fetchall()[0][0]


def test_colliding_keys_add_no_pair(std) -> None:
    """Keys that say every record may pair with every other (as if each hash collided)
    still give only the pairs the rules generate: every candidate is checked."""
    con, _model = std
    rules = blocking.rule_sqls()[:6]
    _split_old_new(con)
    con.execute(
        "CREATE OR REPLACE TABLE std_new AS SELECT * FROM std_new WHERE hash(unique_id) % 7 = 0"
    )
    con.execute(
        "CREATE OR REPLACE VIEW std_mixed AS SELECT * FROM std_old UNION ALL SELECT * FROM std_new"
    )
    blocking.build_profiles(con, "std_mixed", "std_new")
    blocking.block(con, rules, incremental=True)
    recomputed = _blocked(con)
    assert recomputed
    keys = blocking.index_keys(con, rules, blocking.PROFILES)
    assert keys is not None
    colliding = [blocking.RuleKey(k.rule, "1", "1", k.column) for k in keys]
    con.execute(f"CREATE OR REPLACE TABLE saved AS {blocking.index_sql(colliding, 'std_old')}")
    blocking.block_indexed(con, colliding, "saved", "std_old")
    assert _blocked(con) == recomputed
