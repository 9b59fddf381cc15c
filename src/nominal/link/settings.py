"""The Splink model definition: comparisons, blocking rules and thresholds.

Each comparison turns one aspect of a pair of standardised records
(:mod:`nominal.link.standardise`) into a level whose match weight Splink learns
without labels. Levels are ordered from the strongest agreement down and see through
the recording errors partners make: a nickname or an initial, names swapped, part of a
double-barrelled name, a former family name, a date of birth with its day and month
swapped or one digit out, a postcode in part, an abbreviated street type. Exact-match
levels of names, postcodes and addresses carry term-frequency adjustments, so two
records agreeing on "Smith" count for less than two agreeing on "Wróblewski".

Trusted identifiers (NHS number, NI number, unique pupil number, police nominal id)
are comparisons of their own with a null level: they weigh in only where both records
hold them, and their absence is no evidence either way.

Blocking rules bound the pairs that are scored. The union of the rules keeps more
than 99.5% of true pairs on the synthetic population (``benchmarks/link_accuracy.py``
prints the figure, ``benchmarks/link_blocking.py`` at scale) while generating about ten
record pairs per record.
"""

from __future__ import annotations

from typing import Any, Literal

import splink.blocking_rule_library as brl
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.dialects import SplinkDialect

# The thresholds and column names live in a module of their own (no Splink import),
# re-exported here.
from nominal.link.thresholds import (  # noqa: F401
    COMPARISON_NAMES,
    FILE_MATCH_PROBABILITY,
    KEEP_PROBABILITY,
    MATCH_PROBABILITY,
    REVIEW_PROBABILITY,
    TF_COLUMNS,
)

# Name order is judged by the given-name comparison alone: a level for it in both name
# comparisons would count one swap twice (it did: two people's swapped common names
# scored as much as an exact date of birth).
SWAPPED = "given_std_l = family_std_r AND family_std_l = given_std_r"
CROSSED = "given_std_l = family_std_r OR family_std_l = given_std_r"


class CrossedNameLevel(ComparisonLevelCreator):
    """One name in the other's place and misspelt (Jaro-Winkler at or above a threshold).

    A swap and a typo are independent recording errors, so they occur together; the
    SQL uses each backend's own Jaro-Winkler function (DuckDB and Spark name it
    differently).
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        jw = sql_dialect.jaro_winkler_function_name
        return (
            f"{jw}(given_std_l, family_std_r) >= {self.threshold} "
            f"OR {jw}(family_std_l, given_std_r) >= {self.threshold}"
        )

    def create_label_for_charts(self) -> str:
        return f"One name in the other's place, Jaro-Winkler >= {self.threshold}"


def _identifier(column: str, label: str) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=label,
        comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column),
            # A person rarely has two different numbers; when EM never sees a
            # disagreement this starting value stands.
            cll.ElseLevel().configure(m_probability=0.005),
        ],
    )


def comparisons() -> list[Any]:
    """The comparisons of the model, one per aspect of a person record."""
    given = cl.CustomComparison(
        output_column_name="given_name",
        comparison_description="Given name",
        comparison_levels=[
            cll.NullLevel("given_std"),
            cll.ExactMatchLevel("given_std", term_frequency_adjustments=True),
            cll.CustomLevel(SWAPPED, label_for_charts="Given and family names swapped"),
            cll.ArrayIntersectLevel("given_groups", 1).configure(
                label_for_charts="Same name or nickname (Bill/William)"
            ),
            cll.JaroWinklerLevel("given_std", 0.92),
            cll.CustomLevel(
                "(length(given_std_l) = 1 OR length(given_std_r) = 1) "
                "AND given_initial_l = given_initial_r",
                label_for_charts="Initial agrees",
            ),
            cll.JaroWinklerLevel("given_std", 0.8),
            cll.CustomLevel(CROSSED, label_for_charts="One name recorded in the other's place"),
            CrossedNameLevel(0.9),
            cll.ElseLevel(),
        ],
    )
    family = cl.CustomComparison(
        output_column_name="family_name",
        comparison_description="Family name",
        comparison_levels=[
            cll.NullLevel("family_std"),
            cll.ExactMatchLevel("family_std", term_frequency_adjustments=True),
            cll.ArrayIntersectLevel("family_tokens", 1).configure(
                label_for_charts="Part of a double-barrelled name agrees"
            ),
            cll.CustomLevel(
                "family_std_l = other_std_r OR other_std_l = family_std_r",
                label_for_charts="Former family name agrees",
            ),
            cll.JaroWinklerLevel("family_std", 0.92),
            cll.JaroWinklerLevel("family_std", 0.8),
            cll.ElseLevel(),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_description="Date of birth",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel("dob_swapped_l = dob_r", label_for_charts="Day and month swapped"),
            cll.DamerauLevenshteinLevel("dob_str", 1).configure(
                label_for_charts="One digit different"
            ),
            cll.Or(
                cll.AbsoluteDateDifferenceLevel(
                    "dob", input_is_string=False, threshold=1, metric="day"
                ),
                cll.CustomLevel(
                    "abs(dob_year_l - dob_year_r) = 1 "
                    "AND substr(dob_str_l, 5, 4) = substr(dob_str_r, 5, 4)"
                ),
            ).configure(label_for_charts="One day or one year out"),
            cll.ElseLevel(),
        ],
    )
    # Address and postcode are one comparison: they agree together far more often
    # than chance, and counting both would double the evidence of a shared home.
    location = cl.CustomComparison(
        output_column_name="address",
        comparison_description="Address and postcode",
        comparison_levels=[
            cll.And(
                cll.NullLevel("address_std"),
                cll.NullLevel("uprn"),
                cll.NullLevel("postcode_district"),
            ),
            cll.ExactMatchLevel("uprn").configure(label_for_charts="Same UPRN"),
            cll.And(
                cll.ExactMatchLevel("address_std", term_frequency_adjustments=True),
                cll.ExactMatchLevel("postcode_std"),
            ).configure(label_for_charts="Same address and postcode"),
            cll.ExactMatchLevel("address_std", term_frequency_adjustments=True).configure(
                label_for_charts="Same address, postcode differs"
            ),
            # the same home written differently (a flat, a building name, a typo in
            # the street): more than a neighbour who shares only the postcode
            cll.And(
                cll.ExactMatchLevel("postcode_std"), cll.ExactMatchLevel("house_number")
            ).configure(label_for_charts="Same postcode and house number, address differs"),
            cll.ExactMatchLevel("postcode_std", term_frequency_adjustments=True).configure(
                label_for_charts="Same postcode, address differs"
            ),
            cll.ArrayIntersectLevel("address_tokens", 2).configure(
                label_for_charts="Two address words agree"
            ),
            # a postcode keyed with one character wrong or two transposed
            cll.And(
                cll.ExactMatchLevel("house_number"), cll.DamerauLevenshteinLevel("postcode_std", 1)
            ).configure(label_for_charts="Same house number, postcode one character out"),
            cll.ExactMatchLevel("postcode_sector").configure(label_for_charts="Same sector"),
            cll.DamerauLevenshteinLevel("postcode_std", 1).configure(
                label_for_charts="Postcode one character out"
            ),
            cll.ExactMatchLevel("house_number").configure(
                label_for_charts="Same house number, little else"
            ),
            cll.ElseLevel(),
        ],
    )
    sex = cl.CustomComparison(
        output_column_name="sex",
        comparison_description="Sex",
        comparison_levels=[cll.NullLevel("sex"), cll.ExactMatchLevel("sex"), cll.ElseLevel()],
    )
    return [
        given,
        family,
        dob,
        sex,
        location,
        _identifier("nhs_number", "NHS number"),
        _identifier("ni_number", "National Insurance number"),
        _identifier("pupil_number", "Unique pupil number"),
        _identifier("police_id", "Police nominal id"),
    ]


def prediction_blocking_rules() -> list[BlockingRuleCreator | dict[str, Any]]:
    """Rules whose union generates the pairs scored by ``predict``.

    Identifiers catch pairs whose names differ; date of birth with a name catches
    typos and a changed family name; the name with the year and the day and month
    of birth catches a typo in the year; the name at one address catches a date of
    birth that is wrong; names swapped (whole, or one of them) catch a swap.

    On the synthetic population the union keeps about 99.8% of true pairs
    (``benchmarks/link_speed.py --blocking`` prints the figure per rule) while
    generating barely more pairs than there are true pairs. Rules blocking on a
    postcode or a sector with a name were dropped: they added many pairs (families
    share a postcode and a family name) and almost no true pair the others miss.

    The union must be symmetric (a rule and its mirror image, ``l`` and ``r``
    swapped, generate the same pairs together): a run blocks profiles of identical
    records (:mod:`nominal.link.blocking`) whose records lie on both sides of the
    key order.
    """
    return [
        block_on("nhs_number"),
        block_on("ni_number"),
        block_on("pupil_number"),
        block_on("police_id"),
        block_on("dob", "given_canon"),
        block_on("dob", "family_std"),
        block_on("given_canon", "family_std"),
        block_on("given_canon", "address_std"),
        block_on("family_std", "given_initial", "month(dob)", "day(dob)"),
        # given and family names swapped, both or one of them (a rule and its mirror)
        brl.CustomRule("l.given_std = r.family_std AND l.family_std = r.given_std"),
        brl.CustomRule("l.given_std = r.family_std AND l.dob_year = r.dob_year"),
        brl.CustomRule("l.family_std = r.given_std AND l.dob_year = r.dob_year"),
    ]


# Broader rules for ``nominal link-file``: a file someone wants to measure the linker on
# is small enough to afford blocks the hub's million records cannot (a date of birth
# alone, a postcode alone, a street).
FILE_EXTRA_BLOCKING_SQL: tuple[str, ...] = (
    "l.dob = r.dob",
    "l.postcode_std = r.postcode_std",
    "l.house_number = r.house_number AND l.address_tokens[-1] = r.address_tokens[-1]",
)


def training_blocking_rules() -> list[BlockingRuleCreator]:
    """Blocking rules of the expectation-maximisation sessions (each frees the others).

    No session blocks on the address: pairs at one address are mostly members of one
    household, and EM would learn "same household" as the match class.
    """
    return [
        block_on("dob"),
        block_on("given_canon", "family_std"),
    ]


def deterministic_rules() -> list[str | BlockingRuleCreator]:
    """Near-certain rules used to estimate the prior probability of a match."""
    return [
        "l.nhs_number = r.nhs_number AND l.dob = r.dob",
        "l.ni_number = r.ni_number AND l.dob = r.dob",
        "l.given_std = r.given_std AND l.family_std = r.family_std AND l.dob = r.dob",
    ]


def settings(
    retain_intermediate: bool = True,
    link_type: Literal["dedupe_only", "link_only"] = "dedupe_only",
) -> SettingsCreator:
    """The Splink settings of the person model (dedupe across all partners' records).

    ``link_type="link_only"`` links two files (``nominal link-file A.csv B.csv``).
    """
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=prediction_blocking_rules(),
        retain_intermediate_calculation_columns=retain_intermediate,
        retain_matching_columns=False,
        additional_columns_to_retain=["dataset"],
        max_iterations=20,
        em_convergence=0.0001,
    )
