"""Documents linked to people: person mentions in ingested documents, matched to nominals.

:func:`find_mentions` reads ``silver.documents`` and writes ``gold.document_mentions``;
:func:`mentions_for` is what the person view calls.
"""

from __future__ import annotations

from nominal.mentions.find import find_mentions, mentions_for

__all__ = ["find_mentions", "mentions_for"]
