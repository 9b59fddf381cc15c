"""The lineage rows of one link run, for nominals and for households alike.

Both kinds of unit keep their ids across runs by overlap and record what happened to
each id in the same way, so one statement writes both lineage tables
(``gold.nominal_lineage`` and ``gold.household_lineage``):

- ``created``: a fresh id that did not split off a kept one;
- ``merged`` and ``forwarded``: an earlier id that lost its group went to the id most
  of its members went to;
- ``forwarded`` with no successor: an earlier id whose members all went (erased);
- ``split``: a fresh id made of members of a kept id.
"""

from __future__ import annotations

from datetime import datetime


def lineage_sql(
    *,
    unit: str,
    moves: str,
    live: str,
    vanished: str,
    fresh: str,
    change_prefix: str,
    run_id: str,
    changed_at: datetime,
) -> str:
    """A SELECT of ``change_id, run_id, kind, from_<unit>_id, to_<unit>_id, changed_at``.

    The arguments are SQL queries: ``moves`` gives ``(from_id, to_id, n)`` for each
    earlier id and the new id ``n`` of its members went to; ``live`` the ids of this
    run; ``vanished`` the earlier ids not live now (it may read the ``live`` CTE);
    ``fresh`` the ids minted in this run.
    """
    at = changed_at.replace(tzinfo=None).isoformat(sep=" ")
    return f"""
        WITH moves(from_id, to_id, n) AS ({moves}),
        live(id) AS ({live}),
        vanished(id) AS ({vanished}),
        fresh(id) AS ({fresh}),
        merged AS (
            SELECT from_id, to_id FROM moves WHERE from_id IN (SELECT id FROM vanished)
            QUALIFY row_number() OVER (PARTITION BY from_id ORDER BY n DESC, to_id) = 1
        ),
        gone AS (
            SELECT id AS from_id, NULL::VARCHAR AS to_id FROM vanished
            WHERE id NOT IN (SELECT from_id FROM merged)
        ),
        split AS (
            SELECT DISTINCT from_id, to_id FROM moves
            WHERE from_id IN (SELECT id FROM live) AND to_id IN (SELECT id FROM fresh)
        ),
        created AS (
            SELECT NULL::VARCHAR AS from_id, id AS to_id FROM fresh
            WHERE id NOT IN (SELECT to_id FROM split)
        ),
        rows AS (
            SELECT 'created' AS kind, from_id, to_id FROM created
            UNION ALL SELECT 'merged', from_id, to_id FROM merged
            UNION ALL SELECT 'forwarded', from_id, to_id FROM merged
            UNION ALL SELECT 'forwarded', from_id, to_id FROM gone
            UNION ALL SELECT 'split', from_id, to_id FROM split
        )
        SELECT '{change_prefix}' || row_number() OVER (ORDER BY kind, from_id, to_id) AS change_id,
               '{run_id}' AS run_id, kind, from_id AS from_{unit}_id,
               to_id AS to_{unit}_id, TIMESTAMP '{at}' AS changed_at
        FROM rows"""
