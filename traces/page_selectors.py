"""Reads for the trace, compare and upload pages that the read API does not already offer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import connection

_SUMMARY_SQL = """
SELECT p.name, t.start_ns, t.end_ns, t.root_service, t.root_name, t.span_count, t.error_count, t.services
FROM traces t JOIN traces_project p ON p.id = t.project_id
WHERE t.trace_id = %s AND t.project_id = ANY(%s)
"""


def trace_summary(*, project_ids: list[int], trace_id: uuid.UUID) -> dict[str, Any] | None:
    """The header of a trace (from the per-trace summary rows, never the spans), or None when not visible.

    A trace sent to several projects has one summary row per project; they are merged as trace_document does.
    """
    if not project_ids:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SQL, [trace_id, project_ids])
        rows = cursor.fetchall()
    if not rows:
        return None
    start_ns = min(row[1] for row in rows)
    end_ns = max(row[2] for row in rows)
    root = next((row for row in rows if row[3]), rows[0])
    return {
        "trace_id": trace_id.hex,
        "projects": sorted(row[0] for row in rows),
        "start_ns": str(start_ns),
        "start": dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.UTC),
        "end_ns": str(end_ns),
        "duration_ns": end_ns - start_ns,
        "root_service": root[3],
        "root_name": root[4],
        "span_count": sum(row[5] for row in rows),
        "error_count": sum(row[6] for row in rows),
        "services": sorted({service for row in rows for service in row[7]}),
    }
