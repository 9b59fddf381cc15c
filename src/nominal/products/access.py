"""Which event datasets a user may see for a purpose, asked of the policy decision point.

Dashboards, the map and the workbench all show aggregates of events from many
partners; each partner's dataset is shared under its own agreement. So the products
ask the decision point about every dataset in ``gold.events`` and narrow the events
to those allowed: a user whose agreements cover police and health data sees police
and health demand, and nothing is shown from a dataset without a live agreement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

# What a demand figure reads of an event: the fields an agreement must share. The
# output area is not a partner's field: the hub derives it from the postcode at ingest,
# and the products only ever show it aggregated.
DEMAND_FIELDS: tuple[str, ...] = ("event_type", "event_date")


@dataclass(frozen=True)
class Permitted:
    datasets: tuple[str, ...]
    denied: tuple[str, ...]
    agreements: tuple[str, ...]
    pseudonymised_only: bool


def event_datasets(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0] for r in con.execute("SELECT DISTINCT dataset FROM gold.events ORDER BY 1").fetchall()
    ]


def permitted_datasets(
    con: duckdb.DuckDBPyConnection,
    decide: Callable[[str, tuple[str, ...]], object],
    datasets: list[str] | None = None,
) -> Permitted:
    """Ask ``decide(dataset, fields)`` (a bound policy decision) about every dataset
    (``datasets``, when the caller already knows those of ``gold.events``).

    A dataset counts as permitted only if the decision allows it *and* leaves every
    demand field visible; the result is pseudonymised-only if any decision is.
    """
    allowed: list[str] = []
    denied: list[str] = []
    refs: set[str] = set()
    pseudo = False
    for dataset in datasets if datasets is not None else event_datasets(con):
        decision = decide(dataset, DEMAND_FIELDS)
        ok = bool(getattr(decision, "allowed", False)) and not getattr(
            decision, "withheld_fields", ()
        )
        if ok:
            allowed.append(dataset)
            refs.update(getattr(decision, "agreement_refs", ()))
            pseudo = pseudo or bool(getattr(decision, "pseudonymised_only", True))
        else:
            denied.append(dataset)
    return Permitted(tuple(allowed), tuple(denied), tuple(sorted(refs)), pseudo)
