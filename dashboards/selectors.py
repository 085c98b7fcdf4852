"""Reads for dashboards: the per-trace service graph (more to come with the per-minute rollups)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection

from .edges import EdgeSpan, edges_from_trace, service_graph

_SUMMARY_SQL = "SELECT project_id, start_ns, end_ns FROM traces WHERE trace_id = %s AND project_id = ANY(%s)"
# The promoted columns name virtual nodes; bounded by the trace's time window so partition pruning applies.
# The columns of an EdgeSpan, in its field order; edge pairing (dashboards.services) reads the same.
EDGE_SPAN_COLUMNS = """
s.span_id, s.parent_span_id, s.start_ns, s.duration_ns, s.kind, s.service_name, s.name, s.status_code, '',
coalesce(s.peer_service, ''), coalesce(s.db_system, ''), coalesce(s.db_name, ''),
coalesce(s.messaging_system, ''), coalesce(s.messaging_destination, ''), coalesce(s.server_address, '')
"""
_EDGE_SPANS_SQL = f"""
SELECT {EDGE_SPAN_COLUMNS}
FROM spans s
WHERE s.trace_id = %s AND s.project_id + 0 = ANY(%s) AND s.start_ns BETWEEN %s AND %s  -- + 0: traces/selectors.py
"""


def trace_edge_spans(*, project_ids: list[int], trace_id: uuid.UUID) -> list[EdgeSpan] | None:
    """The spans of a trace with the attributes edge detection needs, or None when the trace is not visible."""
    if not project_ids:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SQL, [trace_id, project_ids])
        summaries = cursor.fetchall()
        if not summaries:
            return None
        start = min(row[1] for row in summaries)
        end = max(row[2] for row in summaries)
        cursor.execute(_EDGE_SPANS_SQL, [trace_id, [row[0] for row in summaries], start, end])
        return [EdgeSpan(*row) for row in cursor.fetchall()]


def trace_service_graph(*, project_ids: list[int], trace_id: uuid.UUID) -> dict[str, Any] | None:
    """The service graph of one trace ({nodes, edges, counts}; see dashboards.edges), or None when not visible."""
    spans = trace_edge_spans(project_ids=project_ids, trace_id=trace_id)
    if spans is None:
        return None
    found = edges_from_trace(spans)
    document = service_graph(found.edges, services=found.services)
    document["counts"] = found.counts.as_dict()
    document["span_count"] = len(spans)
    return document
