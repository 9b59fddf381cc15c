"""Following nominal and household ids through merges and splits.

A task or pathway keeps the id of the nominal or household it was raised against.
When a later link run merges that unit into another, or splits it, the vanished id
has a ``forwarded`` (or ``merged``) row pointing at its successor; :class:`Lineage`
follows those rows, latest first, until it reaches a live id:

==============  ==========================  ==========================================
unit            live ids                    forwarding rows
==============  ==========================  ==========================================
``nominal``     ``gold.nominals``           ``gold.nominal_lineage``
                                            (``from_nominal_id`` → ``to_nominal_id``)
``household``   ``gold.households``         ``gold.household_lineage``
                                            (``from_household_id`` → ``to_household_id``)
==============  ==========================  ==========================================

Both lineage tables have the same shape (``change_id``, ``run_id``, ``kind`` — one of
``created``, ``merged``, ``forwarded``, ``split`` — the two ids, ``changed_at``), so
a household merge (two addresses found to be one, a family moving in together) and a
split (a household re-formed at a re-let address) are followed exactly as nominal
ones are. A lake whose link runs write no household lineage yet simply has no
household forwards: a vanished household then shows as retired, never as someone else.

It loads the tables once, so a team queue of hundreds of tasks resolves in one pass
instead of one lake read per task (``nominal.link.resolve`` answers one nominal at a
time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import duckdb

from nominal.products.lakeview import has_table

FORWARDING_KINDS = ("forwarded", "merged")
# unit type -> (live table, id column, lineage table)
UNITS: dict[str, tuple[str, str, str]] = {
    "nominal": ("gold.nominals", "nominal_id", "gold.nominal_lineage"),
    "household": ("gold.households", "household_id", "gold.household_lineage"),
}


class Forwarding:
    """Live-id resolution for one kind of unit."""

    def __init__(self, live: set[str], forwards: dict[str, str]) -> None:
        self.live = live
        self.forwards = forwards
        self._ancestors: dict[str, set[str]] = defaultdict(set)
        for old in forwards:
            target = self.resolve(old)
            if target is not None:
                self._ancestors[target].add(old)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, unit: str) -> Forwarding:
        table, key, lineage = UNITS[unit]
        live: set[str] = set()
        if has_table(con, table):
            live = {r[0] for r in con.execute(f"SELECT {key} FROM {table}").fetchall()}
        forwards: dict[str, str] = {}
        if has_table(con, lineage):
            kinds = ", ".join(f"'{k}'" for k in FORWARDING_KINDS)
            rows = con.execute(
                f"""SELECT from_{key}, to_{key} FROM {lineage}
                   WHERE kind IN ({kinds}) AND from_{key} IS NOT NULL
                     AND to_{key} IS NOT NULL AND from_{key} <> to_{key}
                   QUALIFY row_number() OVER (
                       PARTITION BY from_{key} ORDER BY changed_at DESC, change_id DESC) = 1"""
            ).fetchall()
            forwards = {str(a): str(b) for a, b in rows}
        return cls(live, forwards)

    def resolve(self, unit_id: str) -> str | None:
        current = unit_id
        seen: set[str] = set()
        while current not in self.live:
            if current in seen or current not in self.forwards:
                return None
            seen.add(current)
            current = self.forwards[current]
        return current

    def aliases(self, unit_id: str) -> set[str]:
        return {unit_id} | self._ancestors.get(unit_id, set())


class Lineage:
    """Live-id resolution for nominals and households, built from one snapshot."""

    def __init__(self, units: dict[str, Forwarding], households_known: bool = True) -> None:
        self.units = units
        self.households_known = households_known

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Lineage:
        return cls(
            {unit: Forwarding.load(con, unit) for unit in UNITS},
            households_known=has_table(con, "gold.households"),
        )

    def resolve(self, unit_id: str, unit_type: str = "nominal") -> str | None:
        """The live id for ``unit_id``: itself if live, its successor if forwarded,
        None if it vanished without a successor (e.g. erased). A household id is
        returned as it is when the lake has no households at all (nothing to check)."""
        if unit_type == "household" and not self.households_known:
            return unit_id
        return self.units[unit_type].resolve(unit_id)

    def aliases(self, unit_id: str, unit_type: str = "nominal") -> set[str]:
        """Every id that resolves to ``unit_id`` (itself included): the ids a task
        about this nominal (or household) may have been stored under."""
        return self.units[unit_type].aliases(unit_id)

    def resolve_many(self, ids: Iterable[str], unit_type: str = "nominal") -> dict[str, str | None]:
        return {i: self.resolve(i, unit_type) for i in ids}
