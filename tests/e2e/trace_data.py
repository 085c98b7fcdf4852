"""Traces for the trace, compare and upload page tests, stored through the ingest service (no HTTP round trip)."""

from __future__ import annotations

import secrets
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import now_ns, otlp_request

MS = 1_000_000
XSS = "<img src=x onerror=alert(1)>"


def store(project: Any, request: ExportTraceServiceRequest) -> None:
    from traces.services import spans_ingest

    outcome = spans_ingest(project_id=project.pk, request=request)
    assert outcome.accepted and not outcome.rejected, outcome


def shop_trace(project: Any, *, linked_trace: str = "") -> str:
    """A checkout on host web-1 calling a recommendation service on host rec-1, whose clock runs 250 ms fast.

    Frontend: GET /checkout (0-100 ms) with children XSS-named error span (2-8 ms), audit log (15-20 ms, off the
    critical path: it overlaps GET /recs), GET /recs (10-90 ms, client), 12 sequential "SELECT orders" (N+1).
    Recommendation (raw 260-320 ms, adjusted to 20-80 ms): recommend > SELECT items; plus an orphan whose parent
    never arrived.
    """
    trace_id = secrets.token_hex(16)
    start = now_ns() - 30 * 10**9
    frontend = [
        {
            "trace_id": trace_id,
            "span_id": "01" * 8,
            "name": "GET /checkout",
            "start": start,
            "end": start + 100 * MS,
            "attributes": {"http.route": "/checkout", "http.response.status_code": 200, "user.tier": "gold"},
            "events": [{"name": "request.received", "time": start + 1 * MS}],
        },
        {
            "trace_id": trace_id,
            "span_id": "05" * 8,
            "parent_span_id": "01" * 8,
            "name": XSS,
            "start": start + 2 * MS,
            "end": start + 8 * MS,
            "error": True,
            "message": "<b>boom</b>",
            "attributes": {XSS: XSS},
        },
        {
            "trace_id": trace_id,
            "span_id": "07" * 8,
            "parent_span_id": "01" * 8,
            "name": "audit log",
            "kind": Span.SPAN_KIND_INTERNAL,
            "start": start + 15 * MS,
            "end": start + 20 * MS,
        },
        {
            "trace_id": trace_id,
            "span_id": "02" * 8,
            "parent_span_id": "01" * 8,
            "name": "GET /recs",
            "kind": Span.SPAN_KIND_CLIENT,
            "start": start + 10 * MS,
            "end": start + 90 * MS,
        },
    ] + [
        {
            "trace_id": trace_id,
            "span_id": f"{0x100 + k:016x}",
            "parent_span_id": "01" * 8,
            "name": "SELECT orders",
            "kind": Span.SPAN_KIND_CLIENT,
            "start": start + 91 * MS + k * 200_000,
            "end": start + 91 * MS + k * 200_000 + 150_000,
            "attributes": {"db.system": "postgresql", "db.statement": f"SELECT * FROM orders WHERE id = {k}"},
        }
        for k in range(12)
    ]
    request = otlp_request(frontend, service="frontend", resource={"host.name": "web-1"})
    if linked_trace:
        link = request.resource_spans[0].scope_spans[0].spans[0].links.add()
        link.trace_id = bytes.fromhex(linked_trace)
        link.span_id = bytes.fromhex("01" * 8)
    store(project, request)
    recommendation = [
        {
            "trace_id": trace_id,
            "span_id": "03" * 8,
            "parent_span_id": "02" * 8,
            "name": "recommend",
            "start": start + 260 * MS,
            "end": start + 320 * MS,
            "attributes": {"model.version": "v7"},
            "events": [{"name": "cache miss", "time": start + 265 * MS}],
        },
        {
            "trace_id": trace_id,
            "span_id": "04" * 8,
            "parent_span_id": "03" * 8,
            "name": "SELECT items",
            "kind": Span.SPAN_KIND_CLIENT,
            "start": start + 270 * MS,
            "end": start + 300 * MS,
            "attributes": {"db.system": "postgresql"},
        },
        {
            "trace_id": trace_id,
            "span_id": "06" * 8,
            "parent_span_id": "ff" * 8,
            "name": "orphaned work",
            "start": start + 275 * MS,
            "end": start + 280 * MS,
        },
    ]
    store(project, otlp_request(recommendation, service="recommendation", resource={"host.name": "rec-1"}))
    return trace_id


def tree_trace(project: Any, *, spans: int, fanout: int = 8, service_count: int = 6) -> tuple[str, list[str]]:
    """A `spans`-span trace: a balanced tree (each span has `fanout` children), preorder-ish span IDs 1..N.

    Returns the trace ID and the span IDs in creation order (index 0 is the root). Spans carry only their names:
    the point is the count, built fast (100,000 spans in a few seconds).
    """
    trace_id = bytes.fromhex(secrets.token_hex(16))
    start = now_ns() - 60 * 10**9
    total = 10 * 10**9
    request = ExportTraceServiceRequest()
    scopes = []
    for k in range(service_count):
        resource_spans = request.resource_spans.add()
        kv = resource_spans.resource.attributes.add()
        kv.key = "service.name"
        kv.value.string_value = f"svc-{k}"
        scopes.append(resource_spans.scope_spans.add())
    ids = [(k + 1).to_bytes(8, "big") for k in range(spans)]
    begin = [0] * spans
    length = [0] * spans
    begin[0], length[0] = start, total
    for k in range(spans):
        parent = (k - 1) // fanout if k else -1
        if k:
            slot = (k - 1) % fanout
            width = length[parent] // fanout
            begin[k] = begin[parent] + slot * width
            length[k] = max(width * 9 // 10, 1000)
        scopes[k % service_count].spans.add(
            trace_id=trace_id,
            span_id=ids[k],
            parent_span_id=ids[parent] if k else b"",
            name=f"op-{k}",
            kind=Span.SPAN_KIND_SERVER if k == 0 else Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=begin[k],
            end_time_unix_nano=begin[k] + length[k],
        )
    store(project, request)
    return trace_id.hex(), [raw.hex() for raw in ids]
