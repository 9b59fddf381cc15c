"""Prometheus metrics (prometheus-client), served at ``/metrics``.

Counters are updated where things happen (uploads, pipeline stages, webhooks); gauges
about state (outbox backlog, last run, lake size) are read from the control plane and
the lake when Prometheus scrapes, so they are right even after a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

FEED_UPLOAD_BYTES = Counter(
    "nominal_feed_upload_bytes", "Bytes of deliveries received through the feed API"
)
FEED_DELIVERIES = Counter(
    "nominal_feed_deliveries", "Feed API deliveries by outcome", ["feed", "outcome"]
)
PIPELINE_STAGES = Histogram(
    "nominal_pipeline_stage_seconds",
    "Duration of pipeline stages",
    ["stage", "status"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
)
WEBHOOKS = Counter("nominal_webhook_deliveries", "Webhook delivery attempts", ["outcome"])


class StateCollector(Collector):
    """Gauges read at scrape time from one hub home and its control plane."""

    def __init__(self, home: Any, control: Any) -> None:
        self.home = home
        self.control = control

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import sqlalchemy as sa

        from nominal.engines.lake import Lake

        snap = Lake(self.home.lake).current()
        rows = GaugeMetricFamily("nominal_lake_table_rows", "Rows per lake table", labels=["table"])
        for name, entry in sorted((snap.tables if snap else {}).items()):
            rows.add_metric([name], entry.rows)
        yield rows
        outbox = GaugeMetricFamily(
            "nominal_webhook_outbox", "Webhook deliveries by status", labels=["status"]
        )
        runs = GaugeMetricFamily(
            "nominal_pipeline_last_run_ok", "1 if the latest pipeline run succeeded"
        )
        try:
            from nominal.feeds.models import WebhookDelivery
            from nominal.pipeline.models import PipelineRun

            with self.control.session() as session:
                for status, n in session.execute(
                    sa.select(WebhookDelivery.status, sa.func.count()).group_by(
                        WebhookDelivery.status
                    )
                ):
                    outbox.add_metric([status], n)
                last = session.scalar(
                    sa.select(PipelineRun.status).order_by(PipelineRun.started_at.desc()).limit(1)
                )
                if last is not None:
                    runs.add_metric([], 1.0 if last == "succeeded" else 0.0)
        except Exception:  # noqa: S110  (a scrape must not fail because the database is down)
            pass
        yield outbox
        yield runs


def render(home: Any, control: Any) -> bytes:
    """The exposition text: the process's counters plus the home's state gauges."""
    from prometheus_client import generate_latest

    state = CollectorRegistry()
    state.register(StateCollector(home, control))
    return generate_latest(REGISTRY) + generate_latest(state)
