"""Feeds beyond files in the inbox: FHIR bundles, the feed API (hub of hubs) and alerts.

Importing this package registers the ``fhir`` delivery format with ingest's reader
seam; the CLI and the web app import it (they discover ``nominal.feeds.commands`` and
``nominal.feeds.routes``), and so does the pipeline's ingest stage.
"""

from __future__ import annotations


def _register_formats() -> None:
    from nominal.feeds.fhir import fhir_columns, read_fhir
    from nominal.ingest.readers import register_reader

    register_reader("fhir", read_fhir, parse=fhir_columns)


_register_formats()
