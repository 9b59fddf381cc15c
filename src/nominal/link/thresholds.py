"""The model's decision thresholds and column names, without Splink.

:mod:`nominal.link.settings` builds the Splink model from these; the link run reads
them without importing Splink (an incremental run that replays the model's compiled
prediction SQL, :mod:`nominal.link.compiled`, never imports it: half a CPU second).
"""

from __future__ import annotations

# A pair at or above MATCH_PROBABILITY is the same person; pairs between
# REVIEW_PROBABILITY and MATCH_PROBABILITY go to clerical review.
MATCH_PROBABILITY = 0.99
REVIEW_PROBABILITY = 0.5
# ``nominal link-file`` on an arbitrary file: a match is a pair more likely than not
# the same person. The hub itself is stricter (MATCH_PROBABILITY) because a wrong
# merge shows one person's record to a practitioner looking at another.
FILE_MATCH_PROBABILITY = 0.5
# Pairs kept as evidence (gold.pairs) and considered for clustering and review.
KEEP_PROBABILITY = 0.2

COMPARISON_NAMES: tuple[str, ...] = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "address",
    "nhs_number",
    "ni_number",
    "pupil_number",
    "police_id",
)

# Columns whose term frequencies are frozen with the trained model.
TF_COLUMNS: tuple[str, ...] = ("given_std", "family_std", "postcode_std", "address_std")
