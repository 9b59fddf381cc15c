"""Standardisation of person records for linking, in DuckDB SQL.

Partners write the same person differently: nicknames (Bill for William, Peggy for
Margaret), hyphenated and double-barrelled family names recorded in part, given and
family names swapped, a given name as its initial, diacritics dropped, dates of birth
with typos or the day and month swapped, postcodes in part and street types
abbreviated (Rd, St, Ave). The comparisons in :mod:`nominal.link.settings` can only
see through these if both sides are first put into the same form; this module builds
that form once per record so that blocking and scoring stay plain SQL.

The input is any relation with the canonical identity columns of ``silver.identity``
(missing ones are treated as NULL); the output has one row per record with
``unique_id`` and the standardised columns listed in :data:`STANDARD_COLUMNS`.
"""

from __future__ import annotations

from importlib import resources

import duckdb

NICKNAMES_CSV = "nicknames.csv"

# Columns the standardised table has (besides pass-through ones), in order.
STANDARD_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "dataset",
    "given_std",
    "given_groups",
    "given_canon",
    "given_initial",
    "middle_std",
    "family_std",
    "family_tokens",
    "family_first",
    "other_std",
    "dob",
    "dob_str",
    "dob_swapped",
    "dob_year",
    "sex",
    "postcode_std",
    "postcode_sector",
    "postcode_district",
    "house_number",
    "address_std",
    "address_tokens",
    "uprn",
    "nhs_number",
    "ni_number",
    "pupil_number",
    "police_id",
)

INPUT_COLUMNS: tuple[str, ...] = (
    "given_name",
    "middle_names",
    "family_name",
    "other_names",
    "date_of_birth",
    "sex",
    "street_number",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
    "uprn",
    "nhs_number",
    "ni_number",
    "police_id",
    "pupil_number",
    "dataset",
)

# Street-type and other address abbreviations partners use, to their full word.
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "rd": "road",
    "st": "street",
    "ave": "avenue",
    "av": "avenue",
    "cl": "close",
    "cres": "crescent",
    "cr": "crescent",
    "dr": "drive",
    "ln": "lane",
    "ct": "court",
    "crt": "court",
    "pl": "place",
    "gdns": "gardens",
    "gdn": "gardens",
    "sq": "square",
    "ter": "terrace",
    "terr": "terrace",
    "tce": "terrace",
    "gr": "grove",
    "gro": "grove",
    "pk": "park",
    "wy": "way",
    "hts": "heights",
    "mws": "mews",
    "flt": "flat",
    "apt": "flat",
    "apartment": "flat",
    "hse": "house",
    "ho": "house",
    "nth": "north",
    "sth": "south",
}


def nickname_rows() -> list[tuple[str, str]]:
    """(name, canonical) pairs of the bundled UK nickname table (lower case)."""
    text = resources.files("nominal.link").joinpath("data", NICKNAMES_CSV).read_text("utf-8")
    rows = []
    for line in text.splitlines()[1:]:
        if line.strip():
            name, canonical = line.strip().split(",")
            rows.append((name.strip().lower(), canonical.strip().lower()))
    return rows


def register_nicknames(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``link_nicknames(name, canonical)`` table on ``con`` (idempotent)."""
    rows = nickname_rows()  # one statement: executemany costs a round trip per row
    con.execute(
        "CREATE OR REPLACE TEMP TABLE link_nicknames AS "
        "SELECT unnest($1::VARCHAR[]) AS name, unnest($2::VARCHAR[]) AS canonical",
        [[r[0] for r in rows], [r[1] for r in rows]],
    )


def _clean(expr: str) -> str:
    """Lower case, diacritics folded, only letters, spaces and hyphens kept."""
    return (
        f"nullif(trim(regexp_replace(regexp_replace(lower(strip_accents({expr})), "
        f"'[^a-z\\- ]', '', 'g'), '\\s+', ' ', 'g')), '')"
    )


def _map_literal() -> str:
    items = ", ".join(f"'{k}': '{v}'" for k, v in ADDRESS_ABBREVIATIONS.items())
    return "MAP {" + items + "}"


def standardise_sql(source: str, present: set[str] | None = None) -> str:
    """SQL selecting the standardised records of ``source`` (a table, view or subquery).

    ``present`` names the input columns ``source`` has; others are read as NULL, so a
    file with only names and dates of birth can still be linked.
    """
    have = set(INPUT_COLUMNS) if present is None else present

    def col(name: str, cast: str = "VARCHAR") -> str:
        return f"CAST(s.{name} AS {cast})" if name in have else f"CAST(NULL AS {cast})"

    given_raw = _clean(col("given_name"))
    family_raw = _clean(col("family_name"))
    address_raw = (
        "lower(strip_accents(concat_ws(' ', "
        f"{col('street_number')}, {col('address_line_1')}, {col('address_line_2')})))"
    )
    abbreviations = _map_literal()
    return f"""
    WITH base AS (
        SELECT
            CAST(s.record_key AS VARCHAR) AS unique_id,
            {col("dataset")} AS dataset,
            -- the first given name; a double given name "Mary-Jane" keeps both parts
            nullif(split_part({given_raw}, ' ', 1), '') AS given_std,
            {_clean(col("middle_names"))} AS middle_std,
            {family_raw} AS family_raw,
            {_clean(col("other_names"))} AS other_raw,
            TRY_CAST({col("date_of_birth", "VARCHAR")} AS DATE) AS dob,
            CASE upper(trim({col("sex")})) WHEN 'M' THEN 'M' WHEN 'F' THEN 'F'
                WHEN 'MALE' THEN 'M' WHEN 'FEMALE' THEN 'F' WHEN 'X' THEN 'X' END AS sex,
            nullif(upper(regexp_replace(coalesce({col("postcode")}, ''), '[^A-Za-z0-9]', '', 'g')), '')
                AS pc,
            list_filter(
                list_transform(
                    string_split(regexp_replace({address_raw}, '[^a-z0-9 ]', ' ', 'g'), ' '),
                    lambda t: coalesce({abbreviations}[t], t)),
                lambda t: t <> '' AND t <> coalesce(lower({col("town")}), '')) AS address_tokens,
            nullif(regexp_replace(coalesce({col("uprn")}, ''), '[^0-9]', '', 'g'), '') AS uprn,
            nullif(regexp_replace(coalesce({col("nhs_number")}, ''), '[^0-9]', '', 'g'), '')
                AS nhs_number,
            nullif(upper(regexp_replace(coalesce({col("ni_number")}, ''), '\\s', '', 'g')), '')
                AS ni_number,
            nullif(upper(trim(coalesce({col("pupil_number")}, ''))), '') AS pupil_number,
            nullif(upper(trim(coalesce({col("police_id")}, ''))), '') AS police_id
        FROM {source} AS s
    ),
    nick AS (
        SELECT name, list(DISTINCT canonical ORDER BY canonical) AS groups
        FROM link_nicknames GROUP BY name
    )
    SELECT
        b.unique_id,
        b.dataset,
        b.given_std,
        coalesce(n.groups, CASE WHEN b.given_std IS NOT NULL THEN [b.given_std] END)
            AS given_groups,
        coalesce(n.groups[1], b.given_std) AS given_canon,
        left(b.given_std, 1) AS given_initial,
        b.middle_std,
        nullif(replace(replace(b.family_raw, '-', ''), ' ', ''), '') AS family_std,
        CASE WHEN b.family_raw IS NOT NULL THEN
            list_filter(string_split(replace(b.family_raw, '-', ' '), ' '), lambda t: t <> '')
        END AS family_tokens,
        nullif(split_part(replace(b.family_raw, '-', ' '), ' ', 1), '') AS family_first,
        nullif(replace(replace(b.other_raw, '-', ''), ' ', ''), '') AS other_std,
        b.dob,
        strftime(b.dob, '%Y%m%d') AS dob_str,
        CASE WHEN day(b.dob) <= 12 AND day(b.dob) <> month(b.dob)
            THEN make_date(year(b.dob), day(b.dob), month(b.dob)) END AS dob_swapped,
        year(b.dob) AS dob_year,
        b.sex,
        -- UK postcodes; an all-digit postcode (other countries) is kept whole
        CASE WHEN length(b.pc) >= 5 OR regexp_matches(b.pc, '^[0-9]+$') THEN b.pc END
            AS postcode_std,
        CASE WHEN length(b.pc) >= 5 AND NOT regexp_matches(b.pc, '^[0-9]+$')
             THEN left(b.pc, length(b.pc) - 2) END AS postcode_sector,
        CASE WHEN regexp_matches(b.pc, '^[0-9]+$') THEN b.pc
             WHEN length(b.pc) >= 5 THEN left(b.pc, length(b.pc) - 3)
             WHEN length(b.pc) BETWEEN 2 AND 4 THEN b.pc END AS postcode_district,
        list_filter(b.address_tokens, lambda t: regexp_matches(t, '^[0-9]+[a-z]?$'))[1]
            AS house_number,
        nullif(array_to_string(b.address_tokens, ' '), '') AS address_std,
        CASE WHEN len(b.address_tokens) > 0 THEN b.address_tokens END AS address_tokens,
        b.uprn,
        CASE WHEN length(b.nhs_number) = 10 THEN b.nhs_number END AS nhs_number,
        b.ni_number,
        b.pupil_number,
        b.police_id
    FROM base b LEFT JOIN nick n ON n.name = b.given_std
    """


def standardise(
    con: duckdb.DuckDBPyConnection, source: str, target: str, present: set[str] | None = None
) -> int:
    """Create table ``target`` with the standardised records of ``source``; its row count."""
    register_nicknames(con)
    con.execute(f"CREATE OR REPLACE TABLE {target} AS {standardise_sql(source, present)}")
    return int(con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0])
