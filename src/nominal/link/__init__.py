"""Linking: partner records into golden nominals, households and addresses (Splink 5).

``nominal.link.resolve(nominal_id)`` gives the live id of a possibly merged or split
nominal; ``nominal.link.resolve_household(household_id)`` the same for a household;
``nominal.link.score_pairs(home, left, right)`` scores records with the
trained model (search reuses it). See docs/linking.md.
"""

from __future__ import annotations

from typing import Any


def resolve(nominal_id: str, home: Any = None) -> str | None:
    """The live nominal id for ``nominal_id`` (follows lineage forwards)."""
    from nominal.link.pipeline import resolve as _resolve

    return _resolve(nominal_id, home)


def resolve_household(household_id: str, home: Any = None) -> str | None:
    """The live household id for ``household_id`` (follows lineage forwards)."""
    from nominal.link.households import resolve_household as _resolve

    return _resolve(household_id, home)


def score_pairs(home: Any, left: list[dict[str, Any]], right: list[dict[str, Any]]) -> Any:
    """Score every left record against every right record with the current model."""
    from nominal.link.model import score_pairs as _score

    return _score(home, left, right)


__all__ = ["resolve", "resolve_household", "score_pairs"]
