"""Scoring a query against candidate nominals with the trained linkage model.

Search must never disagree with linking: a query that looks like a record linking
would join to a nominal must score as linking would score that pair. So the score is
not a search-specific formula but the linkage model itself (Splink, trained by
``nominal link`` and saved under ``$NOMINAL_HOME/models/linkage/``). The SQL that Splink
generates for scoring pairs (comparison levels, Bayes factors with frozen term
frequencies, match weight and probability) is generated once when the scorer is
built and then run for each query on a one-row query table crossed with the
candidate rows, in a DuckDB connection held in memory. Generating it once keeps a
search within milliseconds; it is the same SQL ``Linker.inference.score_pairs`` runs.

Reasons come from the same place: each comparison's level (its Splink label) and its
match weight, so "Date of birth: exact match (+9.1)" is what the model actually
counted, not a story told after the fact.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker
from splink.internals.pipeline import CTEPipeline
from splink.internals.predict import predict_from_comparison_vectors_sqls_using_settings

from nominal.config import Home
from nominal.link import model as link_model
from nominal.link import settings as link_settings

QUERY_TABLE = "search_query"
# The words a practitioner reads for each comparison of the model.
DESCRIPTIONS: dict[str, str] = {
    "given_name": "Given name",
    "family_name": "Family name",
    "date_of_birth": "Date of birth",
    "sex": "Sex",
    "address": "Address",
    "nhs_number": "NHS number",
    "ni_number": "NI number",
    "pupil_number": "Pupil number",
    "police_id": "Police id",
}
CANDIDATE_TABLE = "search_candidates"


def load_linkage_model(home: Home) -> link_model.LinkModel:
    """The linkage model in use (the one ``nominal link`` trained and links with)."""
    return link_model.load(home)


@dataclass(frozen=True)
class Level:
    """One comparison level of the trained model, as a practitioner would read it."""

    comparison: str
    description: str
    value: int
    label: str


@dataclass(frozen=True)
class Reason:
    """Why a candidate scored as it did on one comparison."""

    comparison: str
    text: str
    weight: float

    def to_json(self) -> dict[str, Any]:
        return {"comparison": self.comparison, "text": self.text, "weight": round(self.weight, 2)}


def _friendly(label: str) -> str:
    """Splink's generated level labels in plain words ("Exact match on dob" -> "exact match")."""
    text = label.strip()
    if text.lower().startswith("exact match"):
        return "exact match"
    if text.lower().startswith("all other"):
        return "different"
    if text.lower().startswith("jaro-winkler") or text.lower().startswith("jaro_winkler"):
        m = re.search(r">=\s*([0-9.]+)", text)
        return "similar" if m and float(m.group(1)) >= 0.9 else "loosely similar"
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


class LinkageScorer:
    """Scores a one-record query against candidate rows with the trained Splink model.

    Both tables carry the standardised columns of :mod:`nominal.link.standardise` plus
    ``tf_<column>`` for each term-frequency column (looked up in the model's frozen
    term frequencies). The comparison levels are Splink's own SQL (the ``CASE``
    statements it generates from the settings), run in DuckDB; the weights of the
    levels, the term-frequency adjustments and the prior are read from Splink's
    settings object of the trained model and summed as Splink sums them.
    :meth:`score_with_splink` runs Splink's complete prediction SQL instead; the tests
    hold the two to the same numbers.
    """

    def __init__(self, model: link_model.LinkModel) -> None:
        self.model = model
        # Each search is a small query: one thread each, so concurrent searches share cores.
        self._con = duckdb.connect(config={"threads": 1})
        self._local = threading.local()
        self._template = self._empty_template()
        self._con.register("score_template", self._template)
        db_api = DuckDBAPI(self._con)
        linker = Linker(
            db_api.register("score_template"), dict(model.settings), log_level=logging.WARNING
        )
        settings = linker._settings_obj
        settings._retain_matching_columns = True
        settings._retain_intermediate_calculation_columns = True
        blocking = ", ".join(settings._columns_to_select_for_blocking)
        pairs = f"SELECT {blocking} FROM {QUERY_TABLE} AS l CROSS JOIN {CANDIDATE_TABLE} AS r"
        gammas = ", ".join(c._case_statement for c in settings.comparisons)
        # The view is bound again on every query, to the query and candidate tables
        # each thread's cursor registers under these names.
        self._con.register(QUERY_TABLE, self._template)
        self._con.register(CANDIDATE_TABLE, self._template)
        self._con.execute(
            f"CREATE VIEW search_gammas AS SELECT unique_id_r, {gammas} FROM ({pairs})"
        )
        self._con.unregister(QUERY_TABLE)
        self._con.unregister(CANDIDATE_TABLE)
        from nominal.link.standardise import INPUT_COLUMNS, register_nicknames, standardise_sql

        register_nicknames(self._con)
        self._con.execute("CREATE TABLE search_nicknames AS SELECT * FROM link_nicknames")
        raw = pa.table({"record_key": pa.array([], pa.string()),
                        **{c: pa.array([], pa.string()) for c in INPUT_COLUMNS}})  # fmt: skip
        self._con.register("search_query_raw", raw)
        self._con.execute(
            "CREATE VIEW search_query_std AS "
            + standardise_sql("search_query_raw").replace("link_nicknames", "search_nicknames")
        )
        self._con.unregister("search_query_raw")
        vectors = ", ".join(settings._columns_to_select_for_comparison_vector_values)
        pipeline = CTEPipeline()
        pipeline.enqueue_sql(f"SELECT *, 0 AS match_key FROM ({pairs})", "__splink__blocked")
        pipeline.enqueue_sql(
            f"SELECT {vectors} FROM __splink__blocked", "__splink__df_comparison_vectors"
        )
        pipeline.enqueue_list_of_sqls(predict_from_comparison_vectors_sqls_using_settings(settings))
        self.splink_sql = pipeline.generate_cte_pipeline_sql()

        probability = settings.core_model_settings.probability_two_random_records_match
        self.prior_weight = math.log2(probability / (1 - probability))
        self.levels: dict[str, dict[int, Level]] = {}
        self._weights: dict[str, dict[int, float]] = {}
        # (comparison, gamma) -> (tf column, adjustment weight, log2 u of exact match, min u)
        self._tf_levels: dict[tuple[str, int], tuple[str, float, float, float]] = {}
        for comparison in settings.comparisons:
            name = comparison.output_column_name
            levels = comparison.comparison_levels
            self.levels[name] = {}
            self._weights[name] = {}
            for level in levels:
                gamma = level.comparison_vector_value
                self.levels[name][gamma] = Level(
                    name,
                    DESCRIPTIONS.get(name, name.replace("_", " ").capitalize()),
                    gamma,
                    _friendly(level.label_for_charts),
                )
                self._weights[name][gamma] = 0.0 if level.is_null_level else level._match_weight
                if (
                    gamma != -1
                    and level._has_tf_adjustments
                    and level._tf_adjustment_weight != 0
                    and not level._is_else_level
                ):
                    self._tf_levels[(name, gamma)] = (
                        level._tf_adjustment_input_column.input_name,
                        float(level._tf_adjustment_weight),
                        math.log2(level._u_probability_corresponding_to_exact_match(levels)),
                        float(level._tf_minimum_u_value),
                    )
        self.comparisons = list(self.levels)
        self._tf = {
            column: dict(
                zip(
                    model.tf_table(column).column(column).to_pylist(),
                    model.tf_table(column).column(f"tf_{column}").to_pylist(),
                    strict=True,
                )
            )
            for column in link_settings.TF_COLUMNS
        }

    @staticmethod
    def _empty_template() -> pa.Table:
        """An empty table with the standardised and term-frequency columns."""
        from nominal.link.standardise import register_nicknames, standardise_sql

        con = duckdb.connect()
        con.execute("CREATE TABLE raw (record_key VARCHAR)")
        register_nicknames(con)
        table = con.sql(standardise_sql("raw", present={"record_key"})).to_arrow_table()
        for column in link_settings.TF_COLUMNS:
            table = table.append_column(f"tf_{column}", pa.array([], pa.float64()))
        return table

    def standardise(self, record: dict[str, Any]) -> pa.Table:
        """One canonical identity record in the model's standard form, with ``tf_*``.

        Uses :func:`nominal.search.standard.standardise_record`, the linkage
        standardisation for one record (held to the SQL by the tests).
        """
        from nominal.search.standard import standardise_record

        row = standardise_record(record)
        schema = self._template.schema
        base = pa.Table.from_pylist([row], schema=pa.schema([schema.field(n) for n in row]))
        return self.with_term_frequencies(base)

    @property
    def template(self) -> pa.Table:
        return self._template

    def term_frequency(self, column: str, value: Any) -> float | None:
        """The frozen relative frequency of ``value`` in ``column`` (None if unseen)."""
        if value is None:
            return None
        return self._tf[column].get(str(value))

    def with_term_frequencies(self, table: pa.Table) -> pa.Table:
        """``table`` with a ``tf_<column>`` column per term-frequency column."""
        for column in link_settings.TF_COLUMNS:
            name = f"tf_{column}"
            lookup = self._tf[column]
            values = [
                None if v is None else lookup.get(str(v)) for v in table.column(column).to_pylist()
            ]
            array = pa.array(values, pa.float64())
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(name, array)
        return table

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
        return cursor

    def _run(self, sql: str, query: pa.Table, candidates: pa.Table) -> list[dict[str, Any]]:
        cursor = self._cursor()
        cursor.register(QUERY_TABLE, query)
        cursor.register(CANDIDATE_TABLE, candidates)
        try:
            return cursor.sql(sql).to_arrow_table().to_pylist()
        finally:
            cursor.unregister(QUERY_TABLE)
            cursor.unregister(CANDIDATE_TABLE)

    def score(self, query: pa.Table, candidates: pa.Table) -> list[dict[str, Any]]:
        """Score the one-row ``query`` against every row of ``candidates``.

        Returns one dict per candidate: ``unique_id``, ``match_weight``,
        ``match_probability``, ``gammas`` and ``reasons`` (strongest evidence first).
        """
        if candidates.num_rows == 0:
            return []
        rows = self._run("SELECT * FROM search_gammas", query, candidates)
        query_tf = {c: query.column(f"tf_{c}")[0].as_py() for c in link_settings.TF_COLUMNS}
        tf_columns = {c: candidates.column(f"tf_{c}").to_pylist() for c in link_settings.TF_COLUMNS}
        index = {uid: i for i, uid in enumerate(candidates.column("unique_id").to_pylist())}
        out = []
        for row in rows:
            i = index[row["unique_id_r"]]
            total = self.prior_weight
            reasons = []
            gammas = {}
            for name in self.comparisons:
                gamma = int(row[f"gamma_{name}"])
                gammas[name] = gamma
                weight = self._weights[name][gamma]
                tf = self._tf_levels.get((name, gamma))
                if tf is not None:
                    column, adj_weight, log2_u, min_u = tf
                    left, right = query_tf[column], tf_columns[column][i]
                    if left is not None or right is not None:
                        a = left if left is not None else right
                        b = right if right is not None else left
                        weight += adj_weight * (log2_u - math.log2(max(a, b, min_u)))
                total += weight
                if gamma != -1:
                    level = self.levels[name][gamma]
                    reasons.append(Reason(name, f"{level.description}: {level.label}", weight))
            reasons.sort(key=lambda r: -r.weight)
            out.append(
                {
                    "unique_id": row["unique_id_r"],
                    "match_weight": total,
                    "match_probability": _probability(total),
                    "gammas": gammas,
                    "reasons": reasons,
                }
            )
        return out

    def score_with_splink(self, query: pa.Table, candidates: pa.Table) -> list[dict[str, Any]]:
        """The same pairs scored by Splink's complete prediction SQL (slower; for checks)."""
        if candidates.num_rows == 0:
            return []
        return self._run(self.splink_sql, query, candidates)


def _probability(weight: float) -> float:
    """Match probability from a match weight, as Splink computes it."""
    if weight > 60:
        return 1.0
    odds = 2.0**weight
    return odds / (1 + odds)
