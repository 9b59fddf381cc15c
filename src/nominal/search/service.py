"""The search index of a hub home, built once and kept while the lake does not change.

The web app and the command line share this: the index is built from the current
lake snapshot with the current linkage model, and rebuilt when either changes (a new
link run writes a new snapshot; a retrain writes a new model version).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from nominal.config import Home
from nominal.engines.lake import Lake
from nominal.link import model as link_model
from nominal.search.index import SearchIndex, build_index
from nominal.search.scoring import LinkageScorer, load_linkage_model


class SearchUnavailable(RuntimeError):
    """No gold tables or no linkage model yet: the hub has not linked anything."""


@dataclass
class IndexHolder:
    """Holds the index of one home; :meth:`get` rebuilds it when the lake moved on."""

    home: Home
    _index: SearchIndex | None = None
    _model_version: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> SearchIndex:
        lake = Lake(self.home.lake)
        # Only the pointer is read on every search; the snapshot when it has moved.
        current = lake.pointer.read_text().strip() if lake.pointer.exists() else None
        version = link_model.current_version(self.home)
        index = self._index
        if index is not None and index.snapshot_id == current and version == self._model_version:
            return index
        with self._lock:
            index = self._index
            if index is None or index.snapshot_id != current or version != self._model_version:
                snapshot = lake.current()
                if snapshot is None or not snapshot.has("gold.nominals"):
                    raise SearchUnavailable("nothing to search yet: run `nominal link` first")
                try:
                    scorer = LinkageScorer(load_linkage_model(self.home))
                except link_model.ModelError as exc:
                    raise SearchUnavailable(str(exc)) from None
                index = build_index(snapshot, scorer)
                self._index, self._model_version = index, version
            return index
