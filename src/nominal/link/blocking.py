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

**Blocking index.** A rule that is a conjunction of equalities between an expression of
one record and an expression of the other (``l.dob = r.dob AND l.given_canon =
r.given_canon``, ``l.given_std = r.family_std AND ...``, ``MONTH(l.dob) =
MONTH(r.dob)``) holds only when the two records' keys are equal, a key being the hash
of the expressions of one side (:func:`index_keys`). Every run saves the ``r``-side key
of each rule for every record in ``link.blocking_index`` (record key and one UBIGINT
column per rule; an incremental run appends its new records and drops the withdrawn
ones, as for ``link.standardised``). An incremental run then computes keys for the
new profiles only, joins them to the saved keys on one integer column per rule, and
re-checks every candidate pair with the rules themselves on the records' columns
(:func:`block_indexed`): a hash collision cannot add a pair, and a pair that some rule
generates always has equal keys under that rule, so the pairs and their first rules
are exactly those of :func:`block`. Only the earlier records that are candidates of a
new profile are read whole, for scoring. A key column's name is a digest of its
expressions and of the DuckDB version (whose ``hash`` it is), so an index saved
for other rules, or by another DuckDB, is not used; the run then blocks as before and
saves a fresh index.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import duckdb

# Columns that never enter a comparison: the record's own key and its source.
NOT_COMPARED = ("unique_id", "dataset", "std_received_at")
PROFILES = "link_profiles"
MEMBERS = "link_profile_members"
BLOCKED = "link_blocked"
INDEX = "link.blocking_index"


def _q(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop the table or view ``name`` of the connection's main schema, if any."""
    for (kind,) in _q(
        con,
        f"""SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = '{name}'
            AND schema_name = 'main' AND NOT temporary
        UNION ALL SELECT 'VIEW' FROM duckdb_views() WHERE view_name = '{name}'
            AND schema_name = 'main' AND NOT temporary""",
    ):
        _q(con, f"DROP {kind} {name}")


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
    _drop(con, PROFILES)
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


# --------------------------------------------------------------------------------------
# Blocking index
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleKey:
    """The keys of one rule: ``left`` of the ``l`` record, ``right`` of the ``r`` one
    (SQL over one record's columns); the rule holds only if they are equal."""

    rule: str
    left: str
    right: str
    column: str  # the column of the saved right-side key in :data:`INDEX`


def _split_top(text: str, pattern: str) -> list[str]:
    """``text`` split at matches of ``pattern`` outside parentheses and quotes."""
    parts, depth, start, i, quote = [], 0, 0, 0, ""
    regex = re.compile(pattern, re.IGNORECASE)
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            m = regex.match(text, i)
            if m:
                parts.append(text[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(text[start:])
    return parts


def _unwrap(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text  # "(a) = (b)": the first parenthesis closes early
        text = text[1:-1].strip()
    return text


_ALIAS = re.compile(r'(?<![\w."])([lr])\.(?=["\w])')


def _conjuncts(rule: str) -> list[str] | None:
    """The equalities ``rule`` is a conjunction of, or None (an OR, a literal, ...)."""
    if "'" in rule or len(_split_top(rule, r"\s+OR\s+")) > 1:
        return None
    out: list[str] = []
    for part in _split_top(_unwrap(rule), r"\s+AND\s+"):
        inner = _unwrap(part)
        if len(_split_top(inner, r"\s+AND\s+")) > 1:
            nested = _conjuncts(inner)
            if nested is None:
                return None
            out += nested
        else:
            out.append(inner)
    return out


def _sides(equality: str) -> tuple[str, str] | None:
    """``(expression of l, expression of r)`` with the aliases removed, or None."""
    parts = _split_top(equality, r"(?<![<>!=])=(?!=)")
    if len(parts) != 2:
        return None
    ends = []
    for part in parts:
        aliases = set(_ALIAS.findall(part))
        if len(aliases) != 1:
            return None
        ends.append((aliases.pop(), _ALIAS.sub("", part).strip()))
    (a, one), (b, two) = ends
    if {a, b} != {"l", "r"}:
        return None
    return (one, two) if a == "l" else (two, one)


def _key_sql(expressions: list[str]) -> str:
    nulls = " OR ".join(f"({e}) IS NULL" for e in expressions)
    return f"CASE WHEN {nulls} THEN NULL ELSE hash({', '.join(expressions)}) END"


def index_keys(
    con: duckdb.DuckDBPyConnection, rules: list[str], table: str
) -> list[RuleKey] | None:
    """The keys of every rule over the columns of ``table``, or None when some rule is
    not a conjunction of equalities whose two sides have one type (then the index
    cannot stand for it)."""
    parsed: list[tuple[str, list[tuple[str, str]]]] = []
    for rule in rules:
        conjuncts = _conjuncts(rule)
        if not conjuncts:
            return None
        sides = [_sides(c) for c in conjuncts]
        if any(s is None for s in sides):
            return None
        parsed.append((rule, [s for s in sides if s is not None]))
    # the type of every side of every equality, in one statement
    probe = ", ".join(
        f"{lft} AS l{i}_{j}, {rgt} AS r{i}_{j}"
        for i, (_rule, pairs) in enumerate(parsed)
        for j, (lft, rgt) in enumerate(pairs)
    )
    try:
        types = dict((r[0], r[1]) for r in _q(con, f"DESCRIBE SELECT {probe} FROM {table}"))
    except duckdb.Error:
        return None
    keys = []
    for i, (rule, pairs) in enumerate(parsed):
        if any(types[f"l{i}_{j}"] != types[f"r{i}_{j}"] for j in range(len(pairs))):
            return None
        left = _key_sql([lft for lft, _ in pairs])
        right = _key_sql([rgt for _, rgt in pairs])
        digest = hashlib.sha256(f"{right}\nduckdb {duckdb.__version__}".encode()).hexdigest()
        keys.append(RuleKey(rule, left, right, f"k_{digest[:16]}"))
    return keys


def index_sql(keys: list[RuleKey], table: str) -> str:
    """The index rows (record key and the right-side key of every rule) of ``table``."""
    cols = ", ".join(f"{k.right} AS {k.column}" for k in dict((k.column, k) for k in keys).values())
    return f"SELECT unique_id, {cols} FROM {table}"


def block_indexed(
    con: duckdb.DuckDBPyConnection, keys: list[RuleKey], index: str, earlier: str
) -> int:
    """:func:`block` of an incremental run through the saved index (see the module).

    ``index``: the saved keys of the earlier records (a table or view with the columns
    of :func:`index_sql`); ``earlier``: their standardised rows. Replaces the
    :data:`PROFILES` view with a table of the new profiles and the earlier records
    that are candidates of one (all the scoring reads). Returns the number of pairs.
    """
    columns = dict((k.column, k) for k in keys)
    lefts = ", ".join(f"{k.left} AS l{i}" for i, k in enumerate(keys))
    rights = ", ".join(f"{k.right} AS r{i}" for i, k in enumerate(keys))
    _q(
        con,
        f"""CREATE OR REPLACE TABLE link_new_keys AS
        SELECT unique_id, {lefts}, {rights} FROM link_profiles_new""",
    )
    # One scan of the saved keys: the earlier records some new profile's key finds
    # under some rule (a few percent of them), then the joins rule by rule over those.
    found = " OR ".join(
        f"{k.column} IN (SELECT l{i} FROM link_new_keys)" for i, k in enumerate(keys)
    )
    _q(con, f"CREATE OR REPLACE TABLE link_index_hits AS SELECT * FROM {index} WHERE {found}")
    parts = []
    for i, k in enumerate(keys):
        parts.append(
            f"SELECT n.unique_id AS l, e.unique_id AS r FROM link_new_keys n "
            f"JOIN link_index_hits e ON e.{k.column} = n.l{i}"
        )
        parts.append(
            f"SELECT n.unique_id, m.unique_id FROM link_new_keys n "
            f"JOIN link_new_keys m ON m.r{i} = n.l{i} AND n.unique_id < m.unique_id"
        )
    assert columns  # every rule has a key
    _q(
        con,
        f"CREATE OR REPLACE TABLE link_candidates AS SELECT DISTINCT l, r FROM ({' UNION ALL '.join(parts)})",
    )
    # The profiles to score: new ones, and the earlier records some new one may pair with.
    cols = [c for c in compared_columns(con, "link_profiles_new") if c != "size"]
    listed = ", ".join(f'"{c}"' for c in cols)
    _q(
        con,
        f"""CREATE OR REPLACE TABLE link_profiles_scored AS
        SELECT unique_id, dataset, {listed}, size FROM link_profiles_new
        UNION ALL SELECT unique_id, dataset, {listed}, 1 AS size FROM {earlier}
        SEMI JOIN link_candidates c ON c.r = {earlier}.unique_id""",
    )
    _drop(con, PROFILES)
    _q(con, f"ALTER TABLE link_profiles_scored RENAME TO {PROFILES}")
    rules = [k.rule for k in keys]
    first = " ".join(f"WHEN coalesce(({r}), false) THEN '{i}'" for i, r in enumerate(rules))
    any_rule = " OR ".join(f"coalesce(({r}), false)" for r in rules)
    _q(
        con,
        f"""CREATE OR REPLACE TABLE {BLOCKED} AS
        SELECT * FROM (
            SELECT CASE {first} END AS match_key, l.unique_id AS join_key_l,
                   r.unique_id AS join_key_r
            FROM link_candidates c JOIN {PROFILES} l ON l.unique_id = c.l
            JOIN {PROFILES} r ON r.unique_id = c.r
        ) WHERE match_key IS NOT NULL
        UNION ALL
        SELECT CASE {first} END, l.unique_id, r.unique_id
        FROM link_profiles_new AS l JOIN link_profiles_new AS r ON r.unique_id = l.unique_id
        WHERE l.size > 1 AND ({any_rule})""",
    )
    return int(_q(con, f"SELECT count(*) FROM {BLOCKED}")[0][0])
