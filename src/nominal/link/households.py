"""Stable household ids: a household keeps its id across link runs.

A household is the people at one address whose periods there overlap
(:func:`nominal.link.pipeline.build_households` finds the groups). Each run finds the
groups afresh, so an id derived from the group alone (its address and first date)
would change whenever a member with an earlier date joined or a member's dates moved,
and tasks, cohorts and events holding the old id would lose their household.

Ids are carried over like nominal ids: a group takes the id of the earlier household
it shares most members with. Members are compared through this run's nominal
forwarding, so a person whose nominal merged into another still counts; an earlier
household at the same address is preferred to one elsewhere (which only wins where
the address key itself changed, e.g. a UPRN became known). Each earlier id goes to at
most one group. Every change is a row of ``gold.household_lineage``, with the kinds of
``gold.nominal_lineage``: ``created``; ``merged`` (from -> to: its people now belong
to another household); ``split`` (members left a still-live household for a new one);
``forwarded`` (a vanished id and where its people are; to = NULL when none are left).
:func:`resolve_household` follows the forwards.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import duckdb

from nominal.link.lineage import lineage_sql
from nominal.link.tables import lists_table

LINEAGE = "gold.household_lineage"
_NO_PREVIOUS = (
    "(SELECT NULL::VARCHAR AS household_id, NULL::VARCHAR AS nominal_id, "
    "NULL::VARCHAR AS address_key LIMIT 0)"
)


def _q(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def fresh_id(address_key: str, first_date: str) -> str:
    """The id a new household gets: a digest of its address and first date."""
    return "H" + hashlib.sha256(f"{address_key}|{first_date}".encode()).hexdigest()[:15]


def assign_household_ids(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    groups: str,
    *,
    previous: bool,
    previous_lineage: bool,
    nominal_forwards: str | None,
    addresses: str | None = None,
) -> None:
    """Give each household group an id, keeping earlier ids; record lineage.

    ``groups`` has (address_key, grp, nominal_id, from_date): one row per member of
    each group found this run. With ``previous`` the snapshot's ``gold.households``
    and ``gold.household_members`` are the earlier run's (with ``previous_lineage``,
    ``gold.household_lineage`` too: no id is ever reused); ``nominal_forwards`` is a
    table (kind, from_nominal_id, to_nominal_id) of this run's nominal lineage.
    Creates ``hh_assigned`` (address_key, grp, household_id) and
    ``household_lineage_new``.

    ``addresses`` (an incremental run): a table of the address keys whose groups
    ``groups`` holds; only the earlier households at those addresses are carried over
    or retired, the others stay as they are.
    """
    at = f"WHERE h.address_key IN (SELECT address_key FROM {addresses})" if addresses else ""
    prev = (
        f"""(SELECT m.household_id, m.nominal_id, h.address_key
            FROM gold.household_members m JOIN gold.households h USING (household_id) {at})"""
        if previous
        else _NO_PREVIOUS
    )
    forwards = (
        f"""(SELECT from_nominal_id, to_nominal_id FROM {nominal_forwards}
             WHERE kind = 'forwarded')"""
        if nominal_forwards
        else "(SELECT NULL::VARCHAR from_nominal_id, NULL::VARCHAR to_nominal_id LIMIT 0)"
    )
    # Earlier memberships in terms of this run's nominal ids (a forward to NULL: the
    # person's records were all withdrawn, so they are no longer anyone's member).
    _q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE hh_prev AS
        SELECT DISTINCT p.household_id, p.address_key,
               CASE WHEN f.from_nominal_id IS NULL THEN p.nominal_id ELSE f.to_nominal_id END
                   AS nominal_id
        FROM {prev} p LEFT JOIN {forwards} f ON f.from_nominal_id = p.nominal_id""",
    )
    _q(con, "DELETE FROM hh_prev WHERE nominal_id IS NULL")
    _q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE hh_overlap AS
        SELECT g.address_key, g.grp, p.household_id,
               bool_or(p.address_key = g.address_key) AS same_address, count(*) AS n
        FROM (SELECT DISTINCT address_key, grp, nominal_id FROM {groups}) g
        JOIN hh_prev p USING (nominal_id)
        GROUP BY 1, 2, 3""",
    )
    # Each earlier household goes to the group it shares most members with (at its own
    # address first); a group chosen by several keeps the one it shares most with.
    _q(
        con,
        """CREATE OR REPLACE TEMP TABLE hh_kept AS
        WITH best_group AS (
            SELECT * FROM hh_overlap
            QUALIFY row_number() OVER (PARTITION BY household_id
                ORDER BY same_address DESC, n DESC, address_key, grp) = 1
        )
        SELECT address_key, grp, household_id FROM best_group
        QUALIFY row_number() OVER (PARTITION BY address_key, grp
            ORDER BY same_address DESC, n DESC, household_id) = 1""",
    )
    used = {r[0] for r in _q(con, "SELECT DISTINCT household_id FROM hh_prev")}
    if previous:
        used |= {r[0] for r in _q(con, "SELECT household_id FROM gold.households")}
    if previous_lineage:
        used |= {
            r[0]
            for r in _q(
                con,
                f"SELECT from_household_id FROM {LINEAGE} UNION SELECT to_household_id FROM {LINEAGE}",
            )
            if r[0]
        }
    new_groups = _q(
        con,
        f"""SELECT g.address_key, g.grp, CAST(min(g.from_date) AS VARCHAR)
        FROM {groups} g ANTI JOIN hh_kept k USING (address_key, grp)
        GROUP BY 1, 2 ORDER BY 1, 2""",
    )
    fresh: list[tuple[str, int, str]] = []
    for address_key, grp, first in new_groups:
        candidate = fresh_id(address_key, first)
        if candidate in used:  # an id is never reused for another household
            candidate = fresh_id(address_key, f"{first}|{run_id}|{grp}")
        used.add(candidate)
        fresh.append((address_key, grp, candidate))
    lists_table(
        con,
        "hh_fresh_arrow",
        {
            "address_key": ("VARCHAR", [f[0] for f in fresh]),
            "grp": ("BIGINT", [f[1] for f in fresh]),
            "household_id": ("VARCHAR", [f[2] for f in fresh]),
        },
    )
    _q(
        con,
        f"""CREATE OR REPLACE TEMP TABLE hh_assigned AS
        SELECT g.address_key, g.grp, coalesce(k.household_id, f.household_id) AS household_id
        FROM (SELECT DISTINCT address_key, grp FROM {groups}) g
        LEFT JOIN hh_kept k USING (address_key, grp)
        LEFT JOIN hh_fresh_arrow f USING (address_key, grp)""",
    )
    earlier = f"(SELECT household_id FROM gold.households h {at})" if previous else "hh_prev"
    _q(
        con,
        "CREATE OR REPLACE TABLE household_lineage_new AS "
        + lineage_sql(
            unit="household",
            moves="""SELECT o.household_id, a.household_id, o.n
                FROM hh_overlap o JOIN hh_assigned a USING (address_key, grp)
                WHERE o.household_id <> a.household_id""",
            live="SELECT DISTINCT household_id FROM hh_assigned",
            vanished=f"""SELECT household_id FROM (
                    SELECT household_id FROM hh_prev UNION SELECT household_id FROM {earlier}
                ) WHERE household_id NOT IN (SELECT id FROM live)""",
            fresh="SELECT household_id FROM hh_fresh_arrow",
            change_prefix=f"H{run_id}-",
            run_id=run_id,
            changed_at=datetime.now(UTC),
        ),
    )


def resolve_household(household_id: str, home: Any = None) -> str | None:
    """The live household id for ``household_id`` (itself if live; None if none).

    Follows ``forwarded`` rows of ``gold.household_lineage``, so a task or cohort that
    holds an id from an earlier run still finds the household it meant.
    """
    from nominal.config import home as default_home
    from nominal.engines import duck
    from nominal.engines.lake import Lake

    snap = Lake((home or default_home()).lake).require_current()
    tables = ["gold.households"] + ([LINEAGE] if snap.has(LINEAGE) else [])
    con = duck.connect(snap, tables=tables)
    try:
        live = {r[0] for r in _q(con, "SELECT household_id FROM gold.households")}
        forwards: dict[str, str | None] = {}
        if snap.has(LINEAGE):
            forwards = dict(
                _q(
                    con,
                    f"""SELECT from_household_id, to_household_id FROM {LINEAGE}
                    WHERE kind = 'forwarded'
                    QUALIFY row_number() OVER (PARTITION BY from_household_id
                                               ORDER BY changed_at DESC) = 1""",
                )
            )
    finally:
        con.close()
    current: str | None = household_id
    seen: set[str] = set()
    while current is not None and current not in live and current in forwards:
        if current in seen:
            return None
        seen.add(current)
        current = forwards[current]
    return current if current in live else None
