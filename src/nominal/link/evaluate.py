"""Linkage quality against the synthetic ground truth.

``truth/records.parquet`` (docs/synthetic-population.md) maps every source record
(dataset, source record id) to the true person. Given the clusters a link run made
(record -> nominal), this module counts:

- pairwise precision, recall and F1 (a pair of records is a predicted match when both
  are in one nominal, a true match when both are one person), overall and per pair of
  datasets;
- B-cubed precision, recall and F1 (per record: the share of its nominal that is truly
  the same person, and the share of its person that is in its nominal);
- blocking pair recall: the share of true pairs the blocking rules generate at all
  (a pair never generated can never be linked).

Everything is DuckDB SQL so that a million records evaluate in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from nominal.engines.duck import sql_literal


def register_truth(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> None:
    """``link_truth(dataset, source_record_id, person_id)`` from ``truth/records.parquet``."""
    path = sql_literal(str(Path(truth_dir) / "records.parquet"))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE link_truth AS
        SELECT DISTINCT dataset, CAST(source_record_id AS VARCHAR) AS source_record_id,
               CAST(person_id AS VARCHAR) AS person_id
        FROM read_parquet({path})"""
    ).fetchall()


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def cluster_metrics(con: duckdb.DuckDBPyConnection, assignments: str) -> dict[str, Any]:
    """Metrics of ``assignments`` (record_key, nominal_id, dataset, source_record_id).

    Only records with a truth row count (all of them for synthetic data).
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE link_eval AS
        SELECT a.record_key, a.nominal_id, a.dataset, t.person_id
        FROM {assignments} a JOIN link_truth t
          ON t.dataset = a.dataset AND t.source_record_id = a.source_record_id"""
    ).fetchall()
    row = con.execute(
        """WITH c AS (SELECT nominal_id, count(*) n FROM link_eval GROUP BY 1),
        p AS (SELECT person_id, count(*) n FROM link_eval GROUP BY 1),
        cp AS (SELECT nominal_id, person_id, count(*) n FROM link_eval GROUP BY 1, 2)
        SELECT
          (SELECT sum(n * (n - 1) / 2) FROM c),
          (SELECT sum(n * (n - 1) / 2) FROM p),
          (SELECT sum(n * (n - 1) / 2) FROM cp),
          (SELECT count(*) FROM link_eval),
          (SELECT count(*) FROM c), (SELECT count(*) FROM p)"""
    ).fetchall()[0]
    predicted, true, tp, records, clusters, people = (int(x or 0) for x in row)
    b3 = con.execute(
        """WITH c AS (SELECT nominal_id, count(*) n FROM link_eval GROUP BY 1),
        p AS (SELECT person_id, count(*) n FROM link_eval GROUP BY 1),
        cp AS (SELECT nominal_id, person_id, count(*) n FROM link_eval GROUP BY 1, 2)
        SELECT sum(cp.n * cp.n / c.n) / sum(cp.n), sum(cp.n * cp.n / p.n) / sum(cp.n)
        FROM cp JOIN c USING (nominal_id) JOIN p USING (person_id)"""
    ).fetchall()[0]
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    b3p, b3r = float(b3[0] or 0), float(b3[1] or 0)
    return {
        "records": records,
        "nominals": clusters,
        "people": people,
        "true_pairs": true,
        "predicted_pairs": predicted,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "bcubed_precision": b3p,
        "bcubed_recall": b3r,
        "bcubed_f1": _f1(b3p, b3r),
    }


def per_dataset_pair(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Pairwise precision / recall / F1 per pair of datasets (after :func:`cluster_metrics`)."""
    rows = con.execute(
        """WITH pairs AS (
            SELECT least(a.dataset, b.dataset) d1, greatest(a.dataset, b.dataset) d2,
                   a.nominal_id = b.nominal_id AS predicted, a.person_id = b.person_id AS truth
            FROM link_eval a JOIN link_eval b
              ON a.record_key < b.record_key
             AND (a.nominal_id = b.nominal_id OR a.person_id = b.person_id))
        SELECT d1, d2, count(*) FILTER (predicted AND truth), count(*) FILTER (predicted),
               count(*) FILTER (truth)
        FROM pairs GROUP BY 1, 2 ORDER BY 1, 2"""
    ).fetchall()
    out = []
    for d1, d2, tp, pred, true in rows:
        p = tp / pred if pred else 1.0
        r = tp / true if true else 1.0
        out.append(
            {
                "datasets": f"{d1}~{d2}",
                "true_pairs": true,
                "predicted_pairs": pred,
                "precision": p,
                "recall": r,
                "f1": _f1(p, r),
            }
        )
    return out


def blocking_recall(
    con: duckdb.DuckDBPyConnection, standardised: str, rules_sql: list[str]
) -> dict[str, Any]:
    """Share of true pairs generated by the union of blocking rules (SQL on l. / r.).

    ``standardised`` has unique_id (= record_key); ``link_eval`` (from
    :func:`cluster_metrics`) gives each record's true person.
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE link_truepairs AS
        SELECT l.*, e1.record_key AS k1, r_.*, e2.record_key AS k2
        FROM link_eval e1 JOIN link_eval e2
          ON e1.person_id = e2.person_id AND e1.record_key < e2.record_key
        JOIN {standardised} l ON l.unique_id = e1.record_key
        JOIN {standardised} r_ ON r_.unique_id = e2.record_key"""
    ).fetchall()
    # Column names of the right side get the suffix _1 in DuckDB; rebuild them as l./r.
    columns = [c[0] for c in con.execute(f"DESCRIBE {standardised}").fetchall()]
    select = ", ".join(
        [f'"{c}" AS "l_{c}"' for c in columns] + [f'"{c}_1" AS "r_{c}"' for c in columns]
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE link_tp AS SELECT {select} FROM link_truepairs"
    ).fetchall()
    conditions = []
    for rule in rules_sql:
        cond = rule
        for c in sorted(columns, key=len, reverse=True):
            cond = cond.replace(f'l."{c}"', f'"l_{c}"').replace(f'r."{c}"', f'"r_{c}"')
            cond = cond.replace(f"l.{c}", f'"l_{c}"').replace(f"r.{c}", f'"r_{c}"')
        conditions.append(f"coalesce(({cond}), false)")
    total, found = con.execute(
        f"SELECT count(*), count(*) FILTER ({' OR '.join(conditions)}) FROM link_tp"
    ).fetchall()[0]
    per_rule = []
    for rule, cond in zip(rules_sql, conditions, strict=True):
        n = con.execute(f"SELECT count(*) FILTER ({cond}) FROM link_tp").fetchall()[0][0]
        per_rule.append({"rule": rule, "true_pairs_found": int(n)})
    return {
        "true_pairs": int(total),
        "found": int(found),
        "recall": (found / total) if total else 1.0,
        "per_rule": per_rule,
    }
