"""Validation and standardisation as DuckDB SQL, one value and one error per field.

For every canonical field of a contract this module gives three SQL pieces, evaluated at
three levels of one ``SELECT`` (so each piece is computed once per row):

1. **text** -- the raw column as trimmed text, null markers removed, the contract's value
   mapping applied;
2. **value** -- the standardised, typed value computed from the text (NULL if invalid);
3. **error** -- a short reason, computed from the text and value *columns* (cheap: "there
   was text but no valid value"), or NULL.

The pipeline puts all fields in that one statement, so a delivery is validated and
standardised in a single pass however many fields it has, and a failing row names every
field that failed. Reasons start with a stable code (``date_invalid``,
``postcode_invalid``, ``nhs_number_invalid``, ``required_missing``...) that reports and
tests group by. Expressions are chosen for speed on tens of millions of rows: plain
string functions on the common path, regular expressions and list lambdas only for the
values that need them.
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
SEX_UNKNOWN = ("U", "UNKNOWN", "NOT KNOWN", "NOT STATED", "0", "9")

MACROS = (
    # Title case by word, hyphen and apostrophe: "o'NEIL-SMITH" -> "O'Neil-Smith".
    "CREATE OR REPLACE MACRO nominal_title_words(s) AS array_to_string(list_transform("
    "string_split(lower(s), ' '), lambda w: array_to_string(list_transform("
    "string_split(w, '-'), lambda p: array_to_string(list_transform("
    "string_split(p, ''''), lambda q: upper(q[1]) || q[2:]), '''')), '-')), ' ')",
    # Most names are one plain word: capitalise those directly, split only the others.
    "CREATE OR REPLACE MACRO nominal_title(s) AS CASE "
    "WHEN contains(s, ' ') OR contains(s, '-') OR contains(s, '''') "
    "THEN nominal_title_words(s) ELSE upper(s[1]) || lower(s[2:]) END",
    # Runs of whitespace become one space (tabs and newlines are rare: test first).
    "CREATE OR REPLACE MACRO nominal_squash(s) AS CASE "
    "WHEN contains(s, '  ') OR contains(s, chr(9)) OR contains(s, chr(10)) "
    "OR contains(s, chr(13)) THEN regexp_replace(s, '\\s+', ' ', 'g') ELSE s END",
    # NHS number modulus-11 check: the weighted sum of the first nine digits decides
    # the tenth; a remainder giving 10 is never issued.
    "CREATE OR REPLACE MACRO nominal_nhs_ok(d) AS (11 - (("
    + " + ".join(f"(ascii(d[{i}]) - 48) * {11 - i}" for i in range(1, 10))
    + ") % 11)) % 11 = ascii(d[10]) - 48",
)


@dataclass(frozen=True)
class FieldSQL:
    """SQL for one canonical field (see the module docstring for the three levels)."""

    name: str
    text: str  # over the raw column
    value: str  # over the text column
    error: str  # over the text and value columns
    sql_type: str


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def one_of(expr: str, values: tuple[str, ...]) -> str:
    """``expr IN (...)`` written as ``list_contains`` (no join in the plan, see pipeline)."""
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


def text_sql(column_sql: str, null_values: tuple[str, ...]) -> str:
    """The raw column as trimmed text, with the contract's null markers as NULL."""
    t = f"trim(CAST({column_sql} AS VARCHAR))"
    return f"CASE WHEN {one_of(t, tuple(null_values) or ('',))} THEN NULL ELSE {t} END"


def constant_sql(spec: FieldSpec) -> str:
    value = spec.value
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    return sql_literal(str(value))


def _date_value(m: str, fmt: str | None, *, timestamp: bool) -> str:
    """Parse with the contract's format, then ISO (typed Parquet/XLSX/JSON dates)."""
    parsed = [f"try_strptime({m}, {sql_literal(fmt)})"] if fmt and fmt != ISO_DATE else []
    parsed.append(f"try_strptime({m}, {sql_literal(ISO_DATE)})")
    parsed.append(f"try_strptime({m}, '%Y-%m-%d %H:%M:%S')")
    ts = parsed[0] if len(parsed) == 1 else f"coalesce({', '.join(parsed)})"
    # Dates outside 1880..2100 are recording errors (a year typed as 0202, 3024...).
    ok = f"CASE WHEN year(x) BETWEEN 1880 AND 2100 THEN {'x' if timestamp else 'CAST(x AS DATE)'} END"
    return _bind(ts, ok)


def _bind(expr: str, body: str) -> str:
    """``body`` with ``x`` bound to ``expr`` (a lambda over a one-element list)."""
    return f"list_transform([{expr}], lambda x: {body})[1]"


@dataclass(frozen=True)
class _Rule:
    value: str
    code: str | None = None
    detail: str | None = None  # SQL for the message after the code
    extra: str | None = None  # a further condition for the error
    sql_type: str = "VARCHAR"


def _rule(contract: Contract, name: str, m: str) -> _Rule:
    spec = contract.fields[name]
    kind = contract.field_type(name)
    fmt = spec.format or contract.format.date_format
    quoted = f"'''' || {m} || '''"
    if name == "postcode":
        p = f"upper(replace({m}, ' ', ''))"
        value = (
            f"CASE WHEN regexp_full_match({p}, '{POSTCODE_FULL}') "
            f"THEN left({p}, length({p}) - 3) || ' ' || right({p}, 3) "
            f"WHEN length({p}) <= 4 AND regexp_full_match({p}, '{POSTCODE_OUTWARD}') THEN {p} END"
        )
        return _Rule(value, "postcode_invalid", f"{quoted} is not a UK postcode'")
    if name == "nhs_number":
        d = f"replace(replace({m}, ' ', ''), '-', '')"
        ok = f"(length({d}) = 10 AND regexp_full_match({d}, '[0-9]{{10}}') AND nominal_nhs_ok({d}))"
        return _Rule(
            f"CASE WHEN {ok} THEN {d} END",
            "nhs_number_invalid",
            "'not 10 digits with a valid check digit'",
        )
    if name == "ni_number":
        u = f"upper(replace({m}, ' ', ''))"
        never = one_of(f"left({u}, 2)", NI_NEVER_ISSUED)
        ok = f"(regexp_full_match({u}, '{NI_NUMBER}') AND NOT {never})"
        return _Rule(
            f"CASE WHEN {ok} THEN {u} END", "ni_number_invalid", "'not in the form AB123456C'"
        )
    if name == "phone":
        d = f"regexp_replace({m}, '[\\s().-]', '', 'g')"
        value = (
            f"CASE WHEN regexp_full_match({d}, '0[1-9][0-9]{{8,9}}') THEN '+44' || {d}[2:] "
            f"WHEN regexp_full_match({d}, '(\\+|00)?44[1-9][0-9]{{8,9}}') "
            f"THEN '+44' || regexp_extract({d}, '44([0-9]+)$', 1) END"
        )
        return _Rule(value, "phone_invalid", "'not a UK phone number'")
    if name == "email":
        value = f"CASE WHEN regexp_full_match(lower({m}), '{EMAIL}') THEN lower({m}) END"
        return _Rule(value, "email_invalid", "'not an e-mail address'")
    if name == "sex":
        u = f"upper({m})"
        value = (
            f"CASE WHEN {u} = 'M' OR {u} = 'MALE' THEN 'M' WHEN {u} = 'F' OR {u} = 'FEMALE' THEN 'F' "
            f"WHEN {one_of(u, ('X', 'I', 'INDETERMINATE', 'OTHER', 'NON-BINARY'))} THEN 'X' END"
        )
        return _Rule(
            value,
            "sex_invalid",
            f"{quoted} is not M, F or X'",
            extra=f"NOT {one_of(f'upper({m})', SEX_UNKNOWN)}",
        )
    if name == "uprn":
        d = f"regexp_replace({m}, '\\s|\\.0$', '', 'g')"
        return _Rule(
            f"CASE WHEN regexp_full_match({d}, '[0-9]{{1,12}}') THEN {d} END",
            "uprn_invalid",
            "'not 1 to 12 digits'",
        )
    if name in NAME_FIELDS:
        return _Rule(f"nominal_title(nominal_squash({m}))")
    if name in ADDRESS_FIELDS:
        return _Rule(f"nominal_squash({m})")
    if name in ("pupil_number", "oa_code", "police_id"):
        return _Rule(f"upper(replace({m}, ' ', ''))")
    if kind in ("date", "datetime"):
        shown = sql_literal(f"' is not a date in the form {fmt or ISO_DATE}")
        return _Rule(
            _date_value(m, fmt, timestamp=kind == "datetime"),
            "date_invalid",
            f"'''' || {m} || {shown}",
            sql_type="TIMESTAMP" if kind == "datetime" else "DATE",
        )
    if kind == "integer":
        value = _bind(
            f"try_cast({m} AS DOUBLE)", "CASE WHEN x = floor(x) THEN CAST(x AS BIGINT) END"
        )
        return _Rule(
            value, "integer_invalid", f"{quoted} is not a whole number'", sql_type="BIGINT"
        )
    if kind == "number":
        return _Rule(
            f"try_cast({m} AS DOUBLE)",
            "number_invalid",
            f"{quoted} is not a number'",
            sql_type="DOUBLE",
        )
    if kind == "boolean":
        lo = f"lower({m})"
        value = (
            f"CASE WHEN {one_of(lo, ('true', 't', 'yes', 'y', '1'))} THEN true "
            f"WHEN {one_of(lo, ('false', 'f', 'no', 'n', '0'))} THEN false END"
        )
        return _Rule(value, "boolean_invalid", f"{quoted} is not yes/no'", sql_type="BOOLEAN")
    if kind == "category" and spec.values:
        whens = " ".join(
            f"WHEN {sql_literal(v.lower())} THEN {sql_literal(v)}" for v in spec.values
        )
        return _Rule(
            f"CASE lower({m}) {whens} END", "category_invalid", f"{quoted} is not an allowed value'"
        )
    if name == "event_status":
        return _Rule(f"lower({m})")
    return _Rule(m)


def field_sql(contract: Contract, name: str, raw: str, text_col: str, value_col: str) -> FieldSQL:
    """The three SQL pieces of canonical field ``name``.

    ``raw`` is the source column (or a constant); ``text_col`` and ``value_col`` are the
    names the pipeline gives the text and value columns at the next levels.
    """
    spec = contract.fields[name]
    text = _mapped(raw, spec)
    rule = _rule(contract, name, text_col)
    error = "NULL"
    if rule.code is not None:
        condition = f"{text_col} IS NOT NULL AND {value_col} IS NULL"
        if rule.extra:
            condition += f" AND {rule.extra}"
        message = sql_literal(rule.code)
        if rule.detail:
            message = f"{sql_literal(rule.code + ': ')} || {rule.detail}"
        error = f"CASE WHEN {condition} THEN {message} END"
    if spec.required:
        missing = f"CASE WHEN {value_col} IS NULL THEN 'required_missing' END"
        error = missing if error == "NULL" else f"coalesce({error}, {missing})"
    return FieldSQL(name, text, rule.value, error, rule.sql_type)


def column_ref(source: str) -> str:
    return _q(source)
