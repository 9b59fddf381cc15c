"""Validation and standardisation as DuckDB SQL, one expression pair per field.

For every canonical field of a contract this module builds two SQL expressions over
the field's raw text: its standardised, typed **value** and its **error** (a short
reason, or NULL when the value is acceptable). The pipeline puts all of them in one
``SELECT``, so a delivery is validated and standardised in a single pass however many
fields it has, and a failing row names every field that failed.

Reasons start with a stable code (``date_invalid``, ``postcode_invalid``,
``nhs_number_invalid``, ``required_missing``...) that reports and tests can group by.
"""

from __future__ import annotations

from dataclasses import dataclass

from nominal.contracts.model import Contract, FieldSpec
from nominal.engines.duck import sql_literal

NAME_FIELDS = ("given_name", "middle_names", "family_name", "other_names")
ADDRESS_FIELDS = ("address_line_1", "address_line_2", "town")
ISO_DATE = "%Y-%m-%d"

# Full UK postcode (outward + inward) and outward code alone, spaces removed.
POSTCODE_FULL = r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}"
POSTCODE_OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
# National Insurance number: HMRC's letter rules; prefixes never issued are excluded below.
NI_NUMBER = r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]"
NI_NEVER_ISSUED = ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"

MACROS = (
    # Title case by word, hyphen and apostrophe: "o'NEIL-SMITH" -> "O'Neil-Smith".
    "CREATE OR REPLACE MACRO nominal_title(s) AS array_to_string(list_transform("
    "string_split(lower(s), ' '), lambda w: array_to_string(list_transform(string_split(w, '-'),"
    " lambda p: array_to_string(list_transform(string_split(p, ''''),"
    " lambda q: upper(q[1]) || q[2:]), '''')), '-')), ' ')",
    # NHS number modulus-11 check: the weighted sum of the first nine digits decides
    # the tenth; a remainder giving 10 is never issued.
    "CREATE OR REPLACE MACRO nominal_nhs_ok(d) AS (11 - (("
    + " + ".join(f"(ascii(d[{i}]) - 48) * {11 - i}" for i in range(1, 10))
    + ") % 11)) % 11 = ascii(d[10]) - 48",
)


@dataclass(frozen=True)
class FieldSQL:
    """SQL for one canonical field: its value, its error, and its SQL type."""

    name: str
    value: str
    error: str
    sql_type: str


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _one_of(expr: str, values: tuple[str, ...]) -> str:
    """``expr IN (...)`` written as ``list_contains``.

    DuckDB may plan a long ``IN`` list as a join, and a join does not keep the rows in
    file order, which the row numbers of quarantined rows depend on.
    """
    listed = ", ".join(sql_literal(v) for v in values)
    return f"list_contains([{listed}], {expr})"


def _mapped(text: str, spec: FieldSpec) -> str:
    """Apply the contract's value mapping (case-insensitive) before any checks."""
    if not spec.mapping:
        return text
    whens = " ".join(
        f"WHEN {sql_literal(k.lower())} THEN {sql_literal(v)}" for k, v in spec.mapping.items()
    )
    return f"(CASE lower({text}) {whens} ELSE {text} END)"


def _err(condition: str, code: str, detail_sql: str | None = None) -> str:
    message = sql_literal(code)
    if detail_sql is not None:
        message = f"{sql_literal(code + ': ')} || {detail_sql}"
    return f"CASE WHEN {condition} THEN {message} END"


def _date_sql(text: str, fmt: str | None, *, timestamp: bool = False) -> tuple[str, str]:
    """Parse with the contract's format, falling back to ISO (unambiguous) for typed files."""
    parsed = [f"try_strptime({text}, {sql_literal(fmt)})"] if fmt and fmt != ISO_DATE else []
    parsed.append(f"try_strptime({text}, {sql_literal(ISO_DATE)})")
    parsed.append(f"try_strptime({text}, '%Y-%m-%d %H:%M:%S')")
    ts = f"coalesce({', '.join(parsed)})"
    value = ts if timestamp else f"CAST({ts} AS DATE)"
    # Dates outside 1880..2100 are recording errors (a year typed as 0202, 3024...).
    bad = f"{text} IS NOT NULL AND ({ts} IS NULL OR year({ts}) < 1880 OR year({ts}) > 2100)"
    shown = sql_literal(f"' is not a date in the form {fmt or ISO_DATE}")
    error = _err(bad, "date_invalid", f"'''' || {text} || {shown}")
    value = f"CASE WHEN year({ts}) BETWEEN 1880 AND 2100 THEN {value} END"
    return value, error


def field_sql(contract: Contract, name: str, text: str) -> FieldSQL:
    """Value and error SQL for canonical field ``name`` whose trimmed raw text is ``text``."""
    spec = contract.fields[name]
    kind = contract.field_type(name)
    m = _mapped(text, spec)
    fmt = spec.format or contract.format.date_format
    value: str
    error = "NULL"
    sql_type = "VARCHAR"

    if name == "postcode":
        p = f"upper(regexp_replace({m}, '\\s', '', 'g'))"
        value = (
            f"CASE WHEN regexp_full_match({p}, '{POSTCODE_FULL}') "
            f"THEN left({p}, length({p}) - 3) || ' ' || right({p}, 3) "
            f"WHEN regexp_full_match({p}, '{POSTCODE_OUTWARD}') THEN {p} END"
        )
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "postcode_invalid",
                     f"'''' || {m} || ''' is not a UK postcode'")  # fmt: skip
    elif name == "nhs_number":
        d = f"regexp_replace({m}, '[\\s-]', '', 'g')"
        ok = f"(regexp_full_match({d}, '[0-9]{{10}}') AND nominal_nhs_ok({d}))"
        value = f"CASE WHEN {ok} THEN {d} END"
        error = _err(f"{m} IS NOT NULL AND NOT {ok}", "nhs_number_invalid",
                     "'not 10 digits with a valid check digit'")  # fmt: skip
    elif name == "ni_number":
        u = f"upper(regexp_replace({m}, '\\s', '', 'g'))"
        never = _one_of(f"left({u}, 2)", NI_NEVER_ISSUED)
        ok = f"(regexp_full_match({u}, '{NI_NUMBER}') AND NOT {never})"
        value = f"CASE WHEN {ok} THEN {u} END"
        error = _err(f"{m} IS NOT NULL AND NOT {ok}", "ni_number_invalid",
                     "'not in the form AB123456C'")  # fmt: skip
    elif name == "phone":
        d = f"regexp_replace({m}, '[\\s().-]', '', 'g')"
        value = (
            f"CASE WHEN regexp_full_match({d}, '0[1-9][0-9]{{8,9}}') THEN '+44' || {d}[2:] "
            f"WHEN regexp_full_match({d}, '\\+44[1-9][0-9]{{8,9}}') THEN {d} "
            f"WHEN regexp_full_match({d}, '0044[1-9][0-9]{{8,9}}') THEN '+' || {d}[3:] "
            f"WHEN regexp_full_match({d}, '44[1-9][0-9]{{8,9}}') THEN '+' || {d} END"
        )
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "phone_invalid",
                     "'not a UK phone number'")  # fmt: skip
    elif name == "email":
        value = f"CASE WHEN regexp_full_match(lower({m}), '{EMAIL}') THEN lower({m}) END"
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "email_invalid",
                     "'not an e-mail address'")  # fmt: skip
    elif name == "sex":
        u = f"upper({m})"
        value = (
            f"CASE WHEN {_one_of(u, ('M', 'MALE'))} THEN 'M' "
            f"WHEN {_one_of(u, ('F', 'FEMALE'))} THEN 'F' "
            f"WHEN {_one_of(u, ('X', 'I', 'INDETERMINATE', 'OTHER', 'NON-BINARY'))} THEN 'X' END"
        )
        unknown = ("U", "UNKNOWN", "NOT KNOWN", "NOT STATED", "0", "9")
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL AND NOT {_one_of(u, unknown)}",
                     "sex_invalid", f"'''' || {m} || ''' is not M, F or X'")  # fmt: skip
    elif name == "uprn":
        d = f"regexp_replace({m}, '\\s|\\.0$', '', 'g')"
        value = f"CASE WHEN regexp_full_match({d}, '[0-9]{{1,12}}') THEN {d} END"
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "uprn_invalid",
                     "'not 1 to 12 digits'")  # fmt: skip
    elif name in NAME_FIELDS:
        value = f"nominal_title(regexp_replace({m}, '\\s+', ' ', 'g'))"
    elif name in ADDRESS_FIELDS:
        value = f"regexp_replace({m}, '\\s+', ' ', 'g')"
    elif name in ("pupil_number", "oa_code", "police_id"):
        value = f"upper(regexp_replace({m}, '\\s', '', 'g'))"
    elif kind in ("date", "datetime"):
        value, error = _date_sql(m, fmt, timestamp=kind == "datetime")
        sql_type = "TIMESTAMP" if kind == "datetime" else "DATE"
    elif kind == "integer":
        value = f"try_cast(try_cast({m} AS DOUBLE) AS BIGINT)"
        value = (
            f"CASE WHEN try_cast({m} AS DOUBLE) = floor(try_cast({m} AS DOUBLE)) THEN {value} END"
        )
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "integer_invalid",
                     f"'''' || {m} || ''' is not a whole number'")  # fmt: skip
        sql_type = "BIGINT"
    elif kind == "number":
        value = f"try_cast({m} AS DOUBLE)"
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "number_invalid",
                     f"'''' || {m} || ''' is not a number'")  # fmt: skip
        sql_type = "DOUBLE"
    elif kind == "boolean":
        lo = f"lower({m})"
        value = (
            f"CASE WHEN {_one_of(lo, ('true', 't', 'yes', 'y', '1'))} THEN true "
            f"WHEN {_one_of(lo, ('false', 'f', 'no', 'n', '0'))} THEN false END"
        )
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "boolean_invalid",
                     f"'''' || {m} || ''' is not yes/no'")  # fmt: skip
        sql_type = "BOOLEAN"
    elif kind == "category" and spec.values:
        whens = " ".join(
            f"WHEN {sql_literal(v.lower())} THEN {sql_literal(v)}" for v in spec.values
        )
        value = f"CASE lower({m}) {whens} END"
        error = _err(f"{m} IS NOT NULL AND ({value}) IS NULL", "category_invalid",
                     f"'''' || {m} || ''' is not an allowed value'")  # fmt: skip
    elif name == "event_status":
        value = f"lower({m})"
    else:
        value = m

    if spec.required:
        missing = _err(f"({value}) IS NULL", "required_missing")
        error = missing if error == "NULL" else f"coalesce({error}, {missing})"
    return FieldSQL(name, value, error, sql_type)


def text_sql(column_sql: str, null_values: tuple[str, ...]) -> str:
    """The raw column as trimmed text, with the contract's null markers as NULL."""
    t = f"trim(CAST({column_sql} AS VARCHAR))"
    return f"CASE WHEN {_one_of(t, tuple(null_values) or ('',))} THEN NULL ELSE {t} END"


def constant_sql(spec: FieldSpec) -> str:
    value = spec.value
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    return sql_literal(str(value))


def column_ref(source: str) -> str:
    return _q(source)
