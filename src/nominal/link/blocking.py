"""Candidate pairs for scoring, generated in DuckDB SQL over record *profiles*.

Most people appear many times with exactly the same standardised details (a pupil in
every attendance return, a patient in every A&E visit). The model scores a pair from
the compared columns alone, so two records with identical columns score the same
against anything. A run therefore groups records into **profiles** (one row per
distinct combination of the standardised columns), blocks and scores profile pairs,
and expands the scored profile pairs back into record pairs:

- a pair of distinct profiles (A, B) gives every record pair (a, b), a in A, b in B;
- a profile paired with itself (A, A) gives every pair of its records; it is blocked
  when some rule holds between the profile and itself (that rule's columns are all
  present), exactly when the rule holds between two of its records.

The pairs are exactly those the blocking rules generate over the records (Splink's
``predict`` over the records would score the same pairs to the same weights); only
the work is smaller. Splink scores the profile pairs (``register_blocked_pairs_for_
predict``, then ``predict``), so the model, its SQL and its term frequencies are
Splink's.

Blocking rules must be symmetric (``rule(l, r)`` = ``rule(r, l)``): a profile holds
records on both sides of the record-key order. :func:`rule_sqls` checks the
rules it is given the way Splink writes them and ``tests/link/test_blocking.py``
checks the shipped rules on data.

Incremental runs block only the profiles of new records, against each other and
against every earlier record (each earlier record is its own profile there: grouping
a million earlier records would cost more than it saves for a delivery of a few
thousand).
"""

from __future__ import annotations

from typing import Any

import duckdb

# Columns that never enter a comparison: the record's own key and its source.
NOT_COMPARED = ("unique_id", "dataset", "std_received_at")
PROFILES = "link_profiles"
MEMBERS = "link_profile_members"
BLOCKED = "link_blocked"


def _q(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def rule_sqls(rules: list[Any] | None = None) -> list[str]:
    """The prediction blocking rules as DuckDB SQL conditions on ``l.`` and ``r.``."""
    if rules is None:
        from nominal.link import settings as link_settings  # imports Splink

        rules = link_settings.prediction_blocking_rules()
    chosen = rules
    out = []
    for rule in chosen:
        if isinstance(rule, str):
            out.append(rule)
        elif isinstance(rule, dict):
            out.append(str(rule["blocking_rule"]))
        else:
            out.append(str(rule.get_blocking_rule("duckdb").blocking_rule_sql))
    return out


def compared_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Every column of ``table`` a comparison or blocking rule may read."""
    return [r[0] for r in _q(con, f"DESCRIBE {table}") if r[0] not in NOT_COMPARED]


def build_profiles(
    con: duckdb.DuckDBPyConnection, std_all: str, new_table: str | None = None
) -> dict[str, int]:
    """Create :data:`PROFILES` (a standardised table keyed by profile) and :data:`MEMBERS`.

    Full run (``new_table`` None): every record of ``std_all`` is grouped. Incremental:
    the records of ``new_table`` are grouped (their profiles have ``is_new``) and each
    record of ``std_old`` stands alone under its own key (no member rows).
    A profile's ``unique_id`` is the smallest record key of its members.
    """
    source = std_all if new_table is None else new_table
    cols = compared_columns(con, source)
    listed = ", ".join(f'"{c}"' for c in cols)
    _q(
        con,
        f"""CREATE OR REPLACE TABLE link_profile_groups AS
        SELECT min(unique_id) AS unique_id, any_value(dataset) AS dataset,
               list(unique_id) AS members, {listed}
        FROM {source} GROUP BY {listed}""",
    )
    _q(
        con,
        f"""CREATE OR REPLACE TABLE {MEMBERS} AS
        SELECT unique_id AS profile_id, unnest(members) AS record_key,
               len(members) AS size
        FROM link_profile_groups""",
    )
    if new_table is None:
        _q(
            con,
            f"""CREATE OR REPLACE TABLE {PROFILES} AS
            SELECT * EXCLUDE (members), len(members) AS size FROM link_profile_groups""",
        )
    else:
        _q(
            con,
            """CREATE OR REPLACE TABLE link_profiles_new AS
            SELECT * EXCLUDE (members), len(members) AS size FROM link_profile_groups""",
        )
        _q(
            con,
            f"""CREATE OR REPLACE VIEW {PROFILES} AS
            SELECT unique_id, dataset, {listed}, size FROM link_profiles_new
            UNION ALL SELECT unique_id, dataset, {listed}, 1 AS size FROM std_old""",
        )
    _q(con, "DROP TABLE link_profile_groups")
    records, profiles = _q(con, f"SELECT count(*), count(DISTINCT profile_id) FROM {MEMBERS}")[0]
    return {"records": int(records), "profiles": int(profiles)}


def block(
    con: duckdb.DuckDBPyConnection,
    rules: list[str],
    incremental: bool = False,
) -> int:
    """Create :data:`BLOCKED` (match_key, join_key_l, join_key_r) of profile pairs.

    Each pair comes once, with the first rule that generates it (as Splink does):
    pairs of distinct profiles with ``join_key_l < join_key_r``, and self-pairs
    (a profile of several records with itself). Incremental: only pairs with a new
    profile (``link_profiles_new``) on one side. Returns the number of pairs.
    """
    left = "link_profiles_new" if incremental else PROFILES
    if incremental:
        # the earlier side needs only the columns the rules read: one scan of them
        cols = [c for c in compared_columns(con, "link_profiles_new") if c != "size"]
        used = [c for c in cols if any(f"l.{c}" in r or f'l."{c}"' in r for r in rules)]
        listed = ", ".join(f'"{c}"' for c in used)
        _q(
            con,
            f"""CREATE OR REPLACE TABLE link_block_right AS
            SELECT unique_id, true AS is_new, {listed} FROM link_profiles_new
            UNION ALL SELECT unique_id, false AS is_new, {listed} FROM std_old""",
        )
        right = "link_block_right"
        # new x new once (ordered); new x earlier in either order (rules are symmetric)
        order = "(l.unique_id < r.unique_id OR NOT r.is_new)"
    else:
        right = PROFILES
        order = "l.unique_id < r.unique_id"
    parts = []
    for i, rule in enumerate(rules):
        earlier = " OR ".join(f"coalesce(({r}), false)" for r in rules[:i])
        exclude = f" AND NOT ({earlier})" if earlier else ""
        parts.append(
            f"SELECT '{i}' AS match_key, l.unique_id AS join_key_l, r.unique_id AS join_key_r "
            f"FROM {left} AS l JOIN {right} AS r ON ({rule}) AND {order}{exclude}"
        )
    # a profile of several records with itself: its records pair up under a rule
    # whose columns the profile holds
    self_rule = " OR ".join(f"coalesce(({r}), false)" for r in rules)
    first = " ".join(f"WHEN coalesce(({r}), false) THEN '{i}'" for i, r in enumerate(rules))
    parts.append(
        f"SELECT CASE {first} END AS match_key, l.unique_id AS join_key_l, "
        f"r.unique_id AS join_key_r FROM {left} AS l JOIN {left} AS r "
        f"ON r.unique_id = l.unique_id WHERE l.size > 1 AND ({self_rule})"
    )
    _q(con, f"CREATE OR REPLACE TABLE {BLOCKED} AS {' UNION ALL '.join(parts)}")
    return int(_q(con, f"SELECT count(*) FROM {BLOCKED}")[0][0])


def expand_sql(pairs: str, incremental: bool = False) -> str:
    """SQL turning scored profile pairs (``pairs``: ``record_key_l``/``record_key_r``
    holding profile ids, and the pair's other columns) into scored record pairs with
    ``record_key_l < record_key_r``.

    Incremental: earlier records have no member rows (they are their own profile),
    and only pairs with a new record are kept (the others were scored before).
    """
    join = "LEFT JOIN" if incremental else "JOIN"
    key_a = "coalesce(a.record_key, p.record_key_l)" if incremental else "a.record_key"
    key_b = "coalesce(b.record_key, p.record_key_r)" if incremental else "b.record_key"
    return f"""
        SELECT p.* REPLACE (least({key_a}, {key_b}) AS record_key_l,
                            greatest({key_a}, {key_b}) AS record_key_r)
        FROM {pairs} p
        {join} {MEMBERS} a ON a.profile_id = p.record_key_l
        {join} {MEMBERS} b ON b.profile_id = p.record_key_r
        WHERE p.record_key_l <> p.record_key_r OR {key_a} < {key_b}"""
