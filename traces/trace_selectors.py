"""Reads for the trace page: the compact span rows a trace analysis needs, and the analysis document."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection

from . import analysis
from .ingest.rows import span_id_hex

_SUMMARY_SQL = "SELECT project_id, start_ns, end_ns FROM traces WHERE trace_id = %s AND project_id = ANY(%s)"
# Host key for clock-skew grouping: spans reported with the same host share a clock (Jaeger uses host.id, host.ip,
# host.name; a process without host attributes is still one clock, hence service.instance.id last).
_SPANS_SQL = """
SELECT s.span_id, s.parent_span_id, s.start_ns, s.duration_ns, s.kind, s.service_name, s.name, s.status_code,
       coalesce(r.attributes->>'host.id', r.attributes->>'host.ip', r.attributes->>'host.name',
                r.attributes->>'service.instance.id', '')
FROM spans s JOIN traces_resource r ON r.id = s.resource_id
WHERE s.trace_id = %s AND s.project_id + 0 = ANY(%s) AND s.start_ns BETWEEN %s AND %s  -- + 0: see selectors.py
"""


def trace_spans_lite(*, project_ids: list[int], trace_id: uuid.UUID) -> list[analysis.SpanLite] | None:
    """The spans of a trace reduced to what analysis needs, or None when the trace is not visible."""
    if not project_ids:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SQL, [trace_id, project_ids])
        summaries = cursor.fetchall()
        if not summaries:
            return None
        start = min(row[1] for row in summaries)
        end = max(row[2] for row in summaries)
        cursor.execute(_SPANS_SQL, [trace_id, [row[0] for row in summaries], start, end])
        return [analysis.SpanLite(*row) for row in cursor.fetchall()]


def trace_analysis_document(spans: list[analysis.SpanLite], *, adjust: bool = True) -> dict[str, Any]:
    """Everything the trace page computes server-side, keyed by hex span id, times as ns offsets from the start."""
    tree = analysis.tree_build(spans)
    deltas = analysis.clock_skew(tree) if adjust else {}
    if not tree.spans:
        return {
            "start_ns": "0",
            "duration_ns": 0,
            "adjusted": adjust,
            "roots": [],
            "orphans": [],
            "order": [],
            "spans": {},
            "critical_path_ns": 0,
            "stats": [],
            "repeated": [],
            "services": [],
        }
    start = min(span.start + deltas.get(span.span_id, 0) for span in tree.spans.values())
    end = max(span.end + deltas.get(span.span_id, 0) for span in tree.spans.values())
    duration = end - start
    self_ns = analysis.self_times(tree, deltas=deltas)
    sections = analysis.critical_path(tree, deltas=deltas)
    hex_of = {span_id: span_id_hex(span_id) for span_id in tree.spans}
    per_span: dict[str, dict[str, Any]] = {
        hex_of[span_id]: {
            "depth": tree.depth.get(span_id, 0),
            "self_ns": self_ns[span_id],
            "skew_ns": deltas.get(span_id, 0),
            "critical": [],
            "critical_ns": 0,
        }
        for span_id in tree.spans
    }
    for span_id, section_start, section_end in sections:
        entry = per_span[hex_of[span_id]]
        entry["critical"].append([section_start - start, section_end - start])
        entry["critical_ns"] += section_end - section_start
    services: dict[str, list[int]] = {}
    for span in tree.spans.values():
        counts = services.setdefault(span.service, [0, 0])
        counts[0] += 1
        counts[1] += span.status == analysis.STATUS_ERROR
    repeated = analysis.repeated_siblings(tree)
    for group in repeated:
        group["parent_span_id"] = hex_of[group["parent_span_id"]]
        group["span_ids"] = [hex_of[span_id] for span_id in group["span_ids"]]
    return {
        "start_ns": str(start),
        "duration_ns": duration,
        "adjusted": adjust,
        "adjusted_spans": len(deltas),
        "roots": [hex_of[root] for root in tree.roots if root not in tree.orphans],
        "orphans": [hex_of[root] for root in tree.roots if root in tree.orphans],
        "order": [hex_of[span_id] for span_id in analysis.preorder(tree)],
        "spans": per_span,
        "critical_path_ns": sum(section_end - section_start for _, section_start, section_end in sections),
        "stats": analysis.operation_stats(tree, self_ns=self_ns, trace_duration=duration),
        "repeated": repeated,
        "services": [{"service": name, "spans": c[0], "errors": c[1]} for name, c in sorted(services.items())],
    }


def trace_diff_document(a: list[analysis.SpanLite], b: list[analysis.SpanLite]) -> dict[str, Any]:
    rows = analysis.trace_diff(a, b)
    return {
        "rows": rows,
        "summary": {
            "added": sum(1 for row in rows if row["change"] == "added" and not row["subtree_change"]),
            "removed": sum(1 for row in rows if row["change"] == "removed" and not row["subtree_change"]),
            "changed": sum(1 for row in rows if row["change"] == "changed"),
            "same": sum(1 for row in rows if row["change"] == "same"),
        },
    }
