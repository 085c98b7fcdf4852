"""Rollups: per-minute and per-hour aggregates of spans, the source of RED metrics, the service map and SLOs.

Ingest writes one `RollupDelta` per stored batch inside the same transaction as the spans (insert-only, so
concurrent batches never contend), and the compaction task merges pending deltas into `SpanRollup` rows. Rollups
are therefore exact for everything ingested, whatever retention later does to raw spans; the age of the oldest
pending delta is the visible rollup lag.
"""

from __future__ import annotations

from django.db import models

from traces.models import Project


class RollupDelta(models.Model):
    """Aggregates of one ingested batch, waiting to be merged into the rollup tables."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Text, not jsonb: written by every ingest transaction and only ever read whole by compaction, so PostgreSQL
    # need not parse it.
    payload = models.TextField()


class SpanRollup(models.Model):
    """Spans of one (service, operation, kind, status) in one time bucket: counts and a latency histogram."""

    class Resolution(models.IntegerChoices):
        MINUTE = 60
        HOUR = 3600

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    resolution = models.IntegerField(choices=Resolution.choices)
    bucket = models.DateTimeField()
    service_name = models.TextField()
    operation = models.TextField()
    # True on the per-service total row (all operations) kept so service-level charts read few rows.
    all_operations = models.BooleanField(default=False)
    kind = models.SmallIntegerField()
    status_code = models.SmallIntegerField()
    count = models.BigIntegerField()
    error_count = models.BigIntegerField()
    histogram = models.JSONField(help_text="dashboards.histogram.LatencyHistogram.to_json()")
    exemplars = models.JSONField(default=list, help_text="slowest and error spans: [{trace_id, span_id, ...}]")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "project",
                    "resolution",
                    "bucket",
                    "service_name",
                    "operation",
                    "all_operations",
                    "kind",
                    "status_code",
                ],
                name="unique_span_rollup",
            )
        ]
        indexes = [
            models.Index(fields=["project", "resolution", "bucket"], name="rollup_project_bucket"),
            models.Index(fields=["project", "resolution", "service_name", "bucket"], name="rollup_service_bucket"),
        ]
