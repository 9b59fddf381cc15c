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
# A postcode already in its standard form ("NX1 2JW"): its own standardised value.
POSTCODE_STANDARD = r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}"
# National Insurance number: HMRC's letter rules; prefixes never issued are excluded below.
NI_NUMBER = r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]"
NI_NEVER_ISSUED = ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
SEX_UNKNOWN = ("U", "UNKNOWN", "NOT KNOWN", "NOT STATED", "0", "9")
# Every value the sex rule gives (anything else is invalid, or unknown and NULL).
SEX_VALUES = ("M", "F", "X")
# A name that title case leaves unchanged: capitalised ASCII words, one separator apart.
TITLED_NAME = "[A-Z][a-z]*(?:[ '-][A-Z][a-z]*)*"

MACROS = (
    # Title case by word, hyphen and apostrophe: "o'NEIL-SMITH" -> "O'Neil-Smith".
    "CREATE OR REPLACE MACRO nominal_title_words(s) AS array_to_string(list_transform("
    "string_split(lower(s), ' '), lambda w: array_to_string(list_transform("
    "string_split(w, '-'), lambda p: array_to_string(list_transform("
    "string_split(p, ''''), lambda q: upper(q[1]) || q[2:]), '''')), '-')), ' ')",
    # Most names are one plain word, or two joined by one space, hyphen or apostrophe:
    # those are capitalised with plain string functions; longer ones are split.
    "CREATE OR REPLACE MACRO nominal_title2(s, n, i) AS CASE "
    "WHEN n = 0 THEN upper(s[1]) || lower(s[2:]) "
    "WHEN n = 1 THEN upper(s[1]) || lower(s[2:i]) || upper(s[i + 1]) || lower(s[i + 2:]) "
    "ELSE nominal_title_words(s) END",
    # A name already in title case (ASCII words one space, hyphen or apostrophe apart:
    # "Smith", "O'Neil-Hughes") is its own title case and is returned as it is: one
    # compiled pattern costs about half the slicing and case mapping it spares.
    # Otherwise a name with no separator at all skips counting them: three
    # ``contains`` cost a fraction of the two ``translate`` calls.
    "CREATE OR REPLACE MACRO nominal_title(s) AS CASE "
    f"WHEN regexp_full_match(s, {sql_literal(TITLED_NAME)}) THEN s "
    "WHEN contains(s, ' ') OR contains(s, '-') OR contains(s, '''') THEN nominal_title2(s, "
    "length(s) - length(translate(s, ' -''', '')), strpos(translate(s, '-''', '  '), ' ')) "
    "ELSE upper(s[1]) || lower(s[2:]) END",
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
    # Keys spelt as in the contract (the usual case) first: no ``lower`` of every value.
    exact = " ".join(
        f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in spec.mapping.items()
    )
    return f"(CASE {text} {exact} ELSE CASE lower({text}) {whens} ELSE {text} END END)"


def text_sql(column_sql: str, null_values: tuple[str, ...], *, clean: bool = False) -> str:
    """The raw column as trimmed text, with the contract's null markers as NULL.

    ``trim`` is dear (it decodes every character, looking for Unicode spaces) and most
    values have nothing to trim, so it runs only on values that start or end with an
    ASCII space or hold a non-ASCII character (``strlen``, bytes, differs from
    ``length``, characters). Other values are their own trim and are compared with
    the markers directly, and only when short enough to be one.

    ``clean`` says no value of the column starts or ends with a space or holds a
    non-ASCII character (a CSV file the bronze copy found so:
    :class:`nominal.ingest.readers.TextScan`): every value is then its own trim and
    only the marker test remains, with the same result.
    """
    markers = tuple(null_values) or ("",)
    # Markers an ASCII value without outer spaces can equal.
    plain = tuple(m for m in markers if m.isascii() and m == m.strip(" "))
    x = f"CAST({column_sql} AS VARCHAR)"
    t = f"trim({x})"
    first = ""
    if plain:
        longest = max(len(m) for m in plain)
        first = f"WHEN strlen({x}) <= {longest} AND {one_of(x, plain)} THEN NULL "
    if clean:
        return f"CASE {first}ELSE {x} END" if first else x
    return (
        f"CASE {first}WHEN prefix({x}, ' ') OR suffix({x}, ' ') OR strlen({x}) <> length({x}) "
        f"THEN CASE WHEN {one_of(t, markers)} THEN NULL ELSE {t} END ELSE {x} END"
    )


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
    ts = f"coalesce({', '.join(parsed)})"
    return ts if timestamp else f"CAST({ts} AS DATE)"


@dataclass(frozen=True)
class _Rule:
    value: str
    code: str | None = None
    detail: str | None = None  # SQL for the message after the code
    extra: str | None = None  # a further condition for the error (AND)
    also_bad: str | None = None  # a value that parsed but is still wrong (OR)
    sql_type: str = "VARCHAR"
    # Normalisation of the mapped text, applied once at the text level ("{x}" is the
    # text), so that the value's CASE branches reuse a column instead of recomputing it.
    norm: str = "{x}"


def _rule(contract: Contract, name: str, m: str, v: str) -> _Rule:
    """The rule of one field; ``m`` is the (normalised) text column, ``v`` the value column."""
    spec = contract.fields[name]
    kind = contract.field_type(name)
    fmt = spec.format or contract.format.date_format
    quoted = f"'''' || {m} || '''"
    if name == "postcode":
        # Most postcodes arrive in the standard form: one pattern match keeps them as
        # they are. Any other text is upper-cased with its spaces removed (the text an
        # error names) and formatted, so a text with a space left is a standard one.
        value = (
            f"CASE WHEN contains({m}, ' ') THEN {m} "
            f"WHEN regexp_full_match({m}, '{POSTCODE_FULL}') "
            f"THEN left({m}, length({m}) - 3) || ' ' || right({m}, 3) "
            f"WHEN length({m}) <= 4 AND regexp_full_match({m}, '{POSTCODE_OUTWARD}') THEN {m} END"
        )
        return _Rule(
            value, "postcode_invalid", f"{quoted} is not a UK postcode'",
            norm=f"CASE WHEN regexp_full_match({{x}}, '{POSTCODE_STANDARD}') THEN {{x}} "
            "ELSE upper(replace({x}, ' ', '')) END",
        )  # fmt: skip
    if name == "nhs_number":
        ok = f"(length({m}) = 10 AND regexp_full_match({m}, '[0-9]{{10}}') AND nominal_nhs_ok({m}))"
        return _Rule(
            f"CASE WHEN {ok} THEN {m} END",
            "nhs_number_invalid",
            "'not 10 digits with a valid check digit'",
            norm="replace(replace({x}, ' ', ''), '-', '')",
        )
    if name == "ni_number":
        never = one_of(f"left({m}, 2)", NI_NEVER_ISSUED)
        ok = f"(regexp_full_match({m}, '{NI_NUMBER}') AND NOT {never})"
        return _Rule(
            f"CASE WHEN {ok} THEN {m} END",
            "ni_number_invalid",
            "'not in the form AB123456C'",
            norm="upper(replace({x}, ' ', ''))",
        )
    if name == "phone":
        # the usual national form first; other layouts (+44, 0044, brackets) after
        value = (
            f"CASE WHEN prefix({m}, '0') AND regexp_full_match({m}, '0[1-9][0-9]{{8,9}}') "
            f"THEN '+44' || {m}[2:] "
            f"WHEN regexp_full_match({m}, '(\\+|00)?44[1-9][0-9]{{8,9}}') "
            f"THEN '+44' || regexp_extract({m}, '44([0-9]+)$', 1) END"
        )
        return _Rule(
            value, "phone_invalid", "'not a UK phone number'",
            norm="CASE WHEN regexp_matches({x}, '[^0-9+]') "
            "THEN regexp_replace({x}, '[\\s().-]', '', 'g') ELSE {x} END",
        )  # fmt: skip
    if name == "email":
        value = f"CASE WHEN regexp_full_match({m}, '{EMAIL}') THEN {m} END"
        return _Rule(value, "email_invalid", "'not an e-mail address'", norm="lower({x})")
    if name == "sex":
        value = (
            f"CASE WHEN {m} = 'M' OR {m} = 'MALE' THEN 'M' WHEN {m} = 'F' OR {m} = 'FEMALE' THEN 'F' "
            f"WHEN {one_of(m, ('X', 'I', 'INDETERMINATE', 'OTHER', 'NON-BINARY'))} THEN 'X' END"
        )
        return _Rule(
            value, "sex_invalid", f"{quoted} is not M, F or X'",
            extra=f"NOT {one_of(m, SEX_UNKNOWN)}", norm="upper({x})",
        )  # fmt: skip
    if name == "uprn":
        return _Rule(
            f"CASE WHEN regexp_full_match({m}, '[0-9]{{1,12}}') THEN {m} END",
            "uprn_invalid",
            "'not 1 to 12 digits'",
            norm="regexp_replace({x}, '\\s|\\.0$', '', 'g')",
        )
    if name in NAME_FIELDS:
        # A name already in title case is squashed too (single separators, no outer
        # spaces): one pattern match, and the squash runs only for the others.
        return _Rule(
            f"CASE WHEN regexp_full_match({m}, {sql_literal(TITLED_NAME)}) THEN {m} "
            f"ELSE nominal_title(nominal_squash({m})) END"
        )
    if name in ADDRESS_FIELDS:
        return _Rule(m, norm="nominal_squash({x})")
    if name in ("pupil_number", "oa_code", "police_id"):
        return _Rule(m, norm="upper(replace({x}, ' ', ''))")
    if kind in ("date", "datetime"):
        shown = sql_literal(f"' is not a date in the form {fmt or ISO_DATE}")
        return _Rule(
            _date_value(m, fmt, timestamp=kind == "datetime"),
            "date_invalid",
            f"'''' || {m} || {shown}",
            # Dates outside 1880..2100 are recording errors (a year typed as 0202...).
            also_bad=f"NOT (year({v}) BETWEEN 1880 AND 2100)",
            sql_type="TIMESTAMP" if kind == "datetime" else "DATE",
        )
    if kind == "integer":
        # try_cast rounds 2.5 to 3, so a value that is not whole is caught as an error
        return _Rule(
            f"try_cast({m} AS BIGINT)",
            "integer_invalid",
            f"{quoted} is not a whole number'",
            also_bad=f"try_cast({m} AS DOUBLE) <> {v}",
            sql_type="BIGINT",
        )
    if kind == "number":
        return _Rule(
            f"try_cast({m} AS DOUBLE)",
            "number_invalid",
            f"{quoted} is not a number'",
            sql_type="DOUBLE",
        )
    if kind == "boolean":
        value = (
            f"CASE WHEN {one_of(m, ('true', 't', 'yes', 'y', '1'))} THEN true "
            f"WHEN {one_of(m, ('false', 'f', 'no', 'n', '0'))} THEN false END"
        )
        return _Rule(
            value, "boolean_invalid", f"{quoted} is not yes/no'", sql_type="BOOLEAN",
            norm="lower({x})",
        )  # fmt: skip
    if kind == "category" and spec.values:
        whens = " ".join(
            f"WHEN {sql_literal(v.lower())} THEN {sql_literal(v)}" for v in spec.values
        )
        # A value spelt as in the contract (the usual case) is kept without ``lower``.
        exact = one_of(m, tuple(spec.values))
        return _Rule(
            f"CASE WHEN {exact} THEN {m} ELSE CASE lower({m}) {whens} END END",
            "category_invalid",
            f"{quoted} is not an allowed value'",
        )
    if name == "event_status":
        return _Rule(m, norm="lower({x})")
    return _Rule(m)


def field_sql(contract: Contract, name: str, raw: str, text_col: str, value_col: str) -> FieldSQL:
    """The three SQL pieces of canonical field ``name``.

    ``raw`` is the source column (or a constant); ``text_col`` and ``value_col`` are the
    names the pipeline gives the text and value columns at the next levels.
    """
    spec = contract.fields[name]
    rule = _rule(contract, name, text_col, value_col)
    text = rule.norm.replace("{x}", _mapped(raw, spec))
    error = "NULL"
    if rule.code is not None:
        condition = f"{text_col} IS NOT NULL AND {value_col} IS NULL"
        if rule.extra:
            condition += f" AND {rule.extra}"
        if rule.also_bad:
            condition = f"({condition}) OR coalesce({rule.also_bad}, false)"
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
