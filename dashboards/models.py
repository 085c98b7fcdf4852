"""Rollups: per-minute and per-hour aggregates of spans, the source of RED metrics, the service map and SLOs.

Ingest writes one `RollupDelta` per stored batch inside the same transaction as the spans (insert-only, so
concurrent batches never contend), and the compaction task merges pending deltas into `SpanRollup` rows. Rollups
are therefore exact for everything ingested, whatever retention later does to raw spans; the age of the oldest
pending delta is the visible rollup lag.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
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
        # Time-range reads use the unique constraint's (project, resolution, bucket) prefix. A separate index on
        # just that prefix cost every write and, before the first ANALYZE, drew key lookups onto it: PostgreSQL
        # then filtered hundreds of rows per key.
        indexes = [
            models.Index(fields=["project", "resolution", "service_name", "bucket"], name="rollup_service_bucket"),
        ]


class TraceEdgeState(models.Model):
    """A trace's edge pairing: pending while new spans may still arrive, and what it contributed to EdgeRollup,
    so pairing it again after late spans applies only the difference (see dashboards.edge_rollups)."""

    pk = models.CompositePrimaryKey("project", "trace_id")
    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    trace_id = models.UUIDField()
    # When compaction last saw spans of this trace; it is paired once this is EDGE_IDLE_SECONDS old.
    last_seen = models.DateTimeField()
    pending = models.BooleanField(default=True)
    contribution = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["last_seen"], name="edgestate_pending", condition=models.Q(pending=True)),
            BrinIndex(fields=["last_seen"], name="edgestate_last_seen_brin"),
        ]


class EdgeRollup(models.Model):
    """Calls from one service (or the synthetic "clients") to another service or a virtual node in one bucket.

    `callee_kind` is "service" or the virtual node's kind; `connection` is http/rpc, database, messaging,
    parent-child, entry, or "unpaired" (caller "": server spans whose caller never arrived).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    resolution = models.IntegerField(choices=SpanRollup.Resolution.choices)
    bucket = models.DateTimeField()
    caller = models.TextField()
    callee = models.TextField()
    callee_kind = models.TextField()
    connection = models.TextField()
    count = models.BigIntegerField()
    error_count = models.BigIntegerField()
    histogram = models.JSONField(help_text="caller-observed latency (LatencyHistogram.to_json())")
    server_histogram = models.JSONField(help_text="callee-observed latency of paired calls")
    exemplars = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "resolution", "bucket", "caller", "callee", "callee_kind", "connection"],
                name="unique_edge_rollup",
            )
        ]
        # No separate (project, resolution, bucket) index: see SpanRollup. Keyed loads in edges_rollup took 3.9 s
        # instead of 0.1 s for 20k traces when the planner chose it.
