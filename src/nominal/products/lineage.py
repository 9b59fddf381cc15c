"""Following nominal ids through merges and splits (``gold.nominal_lineage``).

A task or pathway keeps the nominal id it was raised against. When a later link run
merges that nominal into another, or splits it, the vanished id has a ``forwarded``
(or ``merged``) row pointing at its successor; :class:`Lineage` follows those rows,
latest first, until it reaches a live nominal. It loads the table once, so a team
queue of hundreds of tasks resolves in one pass instead of one lake read per task
(``nominal.link.resolve`` answers one id at a time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import duckdb

from nominal.products.lakeview import has_table

FORWARDING_KINDS = ("forwarded", "merged")


class Lineage:
    """Live-id resolution for nominals, built from one snapshot."""

    def __init__(self, live: set[str], forwards: dict[str, str]) -> None:
        self.live = live
        self.forwards = forwards
        self._ancestors: dict[str, set[str]] = defaultdict(set)
        for old in forwards:
            target = self.resolve(old)
            if target is not None:
                self._ancestors[target].add(old)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Lineage:
        live = {r[0] for r in con.execute("SELECT nominal_id FROM gold.nominals").fetchall()}
        forwards: dict[str, str] = {}
        if has_table(con, "gold.nominal_lineage"):
            rows = con.execute(
                """SELECT from_nominal_id, to_nominal_id FROM gold.nominal_lineage
                   WHERE kind IN ('forwarded', 'merged') AND from_nominal_id IS NOT NULL
                     AND to_nominal_id IS NOT NULL AND from_nominal_id <> to_nominal_id
                   QUALIFY row_number() OVER (
                       PARTITION BY from_nominal_id ORDER BY changed_at DESC, change_id DESC) = 1"""
            ).fetchall()
            forwards = {str(a): str(b) for a, b in rows}
        return cls(live, forwards)

    def resolve(self, nominal_id: str) -> str | None:
        """The live id for ``nominal_id``: itself if live, its successor if forwarded,
        None if it vanished without a successor (e.g. erased)."""
        current = nominal_id
        seen: set[str] = set()
        while current not in self.live:
            if current in seen or current not in self.forwards:
                return None
            seen.add(current)
            current = self.forwards[current]
        return current

    def aliases(self, nominal_id: str) -> set[str]:
        """Every id that resolves to ``nominal_id`` (itself included): the ids a task
        about this person may have been stored under."""
        return {nominal_id} | self._ancestors.get(nominal_id, set())

    def resolve_many(self, ids: Iterable[str]) -> dict[str, str | None]:
        return {i: self.resolve(i) for i in ids}
