"""Splink's prediction SQL for one model version, recorded once and replayed.

Scoring the blocked profile pairs is Splink's ``predict``: Splink builds a linker
from the model's settings and generates a few SQL statements (the pruned inputs, the
term-frequency lookups, the comparison vectors, the match weights), which DuckDB runs.
The SQL depends only on the model (its settings and frozen term frequencies), the
Splink version, the comparisons in :mod:`nominal.link.settings` and the columns of the
scored table; generating it (importing Splink and sqlglot, building the linker,
parsing and rendering every comparison level) costs more CPU than DuckDB spends
running it on an incremental delivery.

So the first run with a model version records every statement Splink sends to DuckDB
and every table it registers (the frozen term frequencies), and saves them next to the
model as ``<version>.predict-<fingerprint>.json``; later runs whose fingerprint is the
same replay those statements on their own connection, without importing Splink. The
statements are Splink's own, executed in the same order on the same inputs, so the
scores are the same
(``tests/link/test_blocking.py::test_replayed_prediction_sql_scores_as_splink``
compares replayed and Splink scores). The blocking rules' SQL is kept in the same file for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from nominal.config import Home
from nominal.link import thresholds

FORMAT = 1
# Statements Splink runs only to look at the database (does a table exist, what
# columns has it); they change nothing, so a replay skips them. Anything else
# unforeseen stops the recording (nothing is saved; the run goes on with Splink).
_LOOKS = ("select", "with", "pragma", "describe")
_CHANGES = ("create", "drop")


@dataclass
class Compiled:
    """A recorded prediction: blocking rules, statements, tables to register."""

    rules: list[str]
    # ("sql", statement) or ("register", table name, term-frequency column)
    steps: list[list[str]]
    output: str
    # False: Splink did something a replay would not repeat (then it is not saved)
    complete: bool = True


def fingerprint(con: duckdb.DuckDBPyConnection, model: Any, table: str) -> str:
    """What the recorded SQL depends on: the model version and its settings, the
    Splink version, the source of the comparisons and the scored table's columns."""
    digest = hashlib.sha256()
    digest.update(f"format {FORMAT}\n{model.version}\n".encode())
    digest.update(json.dumps(model.settings, sort_keys=True).encode())
    digest.update(metadata.version("splink").encode())
    here = Path(__file__).parent
    for source in ("settings.py", "thresholds.py", "model.py"):
        digest.update((here / source).read_bytes())
    for name, kind, *_rest in con.execute(f"DESCRIBE {table}").fetchall():
        digest.update(f"{name} {kind}\n".encode())
    return digest.hexdigest()[:20]


def _path(home: Home, model: Any, key: str) -> Path:
    from nominal.link.model import model_dir

    return model_dir(home) / f"{model.version}.predict-{key}.json"


def any_for(home: Home, model_version: str | None) -> bool:
    """Whether some compiled prediction exists for ``model_version``."""
    from nominal.link.model import model_dir

    if model_version is None:
        return False
    return any(model_dir(home).glob(f"{model_version}.predict-*.json"))


def load(home: Home, model: Any, key: str) -> Compiled | None:
    path = _path(home, model, key)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if raw.get("format") != FORMAT:
        return None
    return Compiled(rules=list(raw["rules"]), steps=raw["steps"], output=str(raw["output"]))


def save(home: Home, model: Any, key: str, compiled: Compiled) -> None:
    if not compiled.complete:
        return
    path = _path(home, model, key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "format": FORMAT,
                "rules": compiled.rules,
                "steps": compiled.steps,
                "output": compiled.output,
            }
        )
    )
    tmp.replace(path)


def record(
    con: duckdb.DuckDBPyConnection, model: Any, profiles: str, blocked: str, rules: list[str]
) -> Compiled:
    """Run Splink's ``predict`` of the pairs in ``blocked`` over ``profiles`` (on
    ``con``), recording what it executes; the predictions stay in ``output``."""
    from splink import DuckDBAPI

    from nominal.link.model import linker_for

    steps: list[list[str]] = []
    unforeseen: list[str] = []

    class RecordingAPI(DuckDBAPI):
        def _execute_sql_against_backend(self, final_sql: str) -> duckdb.DuckDBPyRelation:
            verb = final_sql.lstrip().lower()
            if verb.startswith(_CHANGES):
                steps.append(["sql", final_sql])
            elif not verb.startswith(_LOOKS):
                unforeseen.append(final_sql)
            return super()._execute_sql_against_backend(final_sql)

        def _table_registration(self, input: Any, table_name: str) -> None:
            columns = getattr(input, "column_names", None)
            if not columns or columns[0] not in thresholds.TF_COLUMNS:
                unforeseen.append(f"register {table_name}")
            else:
                steps.append(["register", table_name, str(columns[0])])
            super()._table_registration(input, table_name)

    db_api = RecordingAPI(con)
    linker = linker_for(db_api, profiles, model)
    linker.table_management.register_blocked_pairs_for_predict(db_api.register(blocked))
    pred = linker.inference.predict(
        threshold_match_probability=thresholds.KEEP_PROBABILITY, warning_mode="never"
    )
    return Compiled(rules=rules, steps=steps, output=pred.physical_name, complete=not unforeseen)


def replay(con: duckdb.DuckDBPyConnection, model: Any, compiled: Compiled) -> str:
    """Run a recorded prediction on ``con``; returns the predictions table."""
    frequencies = ""
    for step in compiled.steps:
        if step[0] == "register":
            # the lookup Splink registered: one column's frozen term frequencies,
            # named as Splink names them (a view over the model's table)
            if not frequencies:
                frequencies = _term_frequencies(con, model)
            table, column = step[1], step[2]
            con.execute(
                f'CREATE OR REPLACE VIEW {table} AS SELECT value AS "{column}", '
                f'tf AS "tf_{column}" FROM {frequencies} WHERE "column" = {_literal(column)}'
            )
        else:
            con.execute(step[1])
    return compiled.output


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _term_frequencies(con: duckdb.DuckDBPyConnection, model: Any) -> str:
    """The model's term frequencies as a DuckDB table (read from its Parquet file when
    the model has not loaded them: a few milliseconds, against a tenth of a second of
    wall time for PyArrow's first read in a process)."""
    name = "link_term_frequencies"
    if isinstance(model.tf_data, Path):
        con.execute(
            f"CREATE OR REPLACE TABLE {name} AS SELECT "
            f'"column", value, tf FROM read_parquet({_literal(str(model.tf_data))})'
        )
    else:
        con.register(f"{name}_arrow", model.tf_data)
        con.execute(
            f'CREATE OR REPLACE TABLE {name} AS SELECT "column", value, tf FROM {name}_arrow'
        )
        con.unregister(f"{name}_arrow")
    return name
