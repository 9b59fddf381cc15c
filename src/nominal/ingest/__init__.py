"""Ingestion: partner deliveries -> bronze (as received) -> silver (validated, split).

Public entry points are in :mod:`nominal.ingest.api`; readers can be added with
:func:`nominal.ingest.readers.register_reader`.
"""

from nominal.ingest.api import import_geography, import_synth_geography, ingest_paths
from nominal.ingest.pipeline import DeliveryResult, IngestError, IngestSummary
from nominal.ingest.readers import ReadError, register_reader

__all__ = [
    "DeliveryResult",
    "IngestError",
    "IngestSummary",
    "ReadError",
    "import_geography",
    "import_synth_geography",
    "ingest_paths",
    "register_reader",
]
