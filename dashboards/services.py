"""Writes of the dashboards app: recording rollup deltas at ingest and compacting them into rollups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction

from .histogram import LatencyHistogram
from .rollups import HOUR, MINUTE, Group, GroupKey, delta_payload, deltas_merge

_COMPACT_LOCK = 771_101  # advisory lock: one compactor at a time, so read-merge-write needs no row races


def rollup_delta_record(cursor: Any, *, project_id: int, rows: list[list[Any]]) -> None:
    """Record the aggregates of stored span rows, in the caller's (ingest) transaction. Insert-only: no contention."""
    if not rows:
        return
    cursor.execute(
        "INSERT INTO dashboards_rollupdelta (project_id, created_at, payload) VALUES (%s, now(), %s)",
        [project_id, orjson.dumps(delta_payload(rows)).decode()],
    )


@dataclass(frozen=True)
class CompactReport:
    deltas: int
    rows_written: int
    busy: bool = False


def _rows_for(project_id: int, resolution: int, groups: dict[GroupKey, Group]) -> list[dict[str, Any]]:
    return [
        {
            "project_id": project_id,
            "resolution": resolution,
            "bucket": dt.datetime.fromtimestamp(bucket, tz=dt.UTC).isoformat(),
            "service_name": service,
            "operation": operation or "",
            "all_operations": operation is None,
            "kind": kind,
            "status_code": status,
            "count": group.count,
            "error_count": group.errors,
            "histogram": group.histogram.to_json(),
            "exemplars": group.exemplars,
        }
        for (bucket, service, operation, kind, status), group in groups.items()
    ]


_KEY_COLUMNS = "project_id, resolution, bucket, service_name, operation, all_operations, kind, status_code"
_RECORD = (
    "project_id int, resolution int, bucket timestamptz, service_name text, operation text, all_operations bool, "
    "kind smallint, "
    "status_code smallint, count bigint, error_count bigint, histogram jsonb, exemplars jsonb"
)


def _merge_into_table(cursor: Any, rows: list[dict[str, Any]]) -> int:
    """Add rows to the rollup table: existing rows are read, merged in Python (histograms) and written back."""
    cursor.execute(
        f"""
        SELECT r.id, r.project_id, r.resolution, r.bucket, r.service_name, r.operation, r.all_operations, r.kind,
               r.status_code, r.count, r.error_count, r.histogram, r.exemplars
        FROM dashboards_spanrollup r JOIN json_to_recordset(%s::json) AS u({_RECORD}) USING ({_KEY_COLUMNS})
        """,
        [orjson.dumps(rows).decode()],
    )
    existing = {}
    for (
        row_id,
        project,
        resolution,
        bucket,
        service,
        operation,
        total,
        kind,
        status,
        count,
        errors,
        hist,
        ex,
    ) in cursor.fetchall():
        key = (project, resolution, bucket.isoformat(), service, operation, total, kind, status)
        existing[key] = (row_id, count, errors, hist, ex)
    for row in rows:
        key = (
            row["project_id"],
            row["resolution"],
            dt.datetime.fromisoformat(row["bucket"]).isoformat(),
            row["service_name"],
            row["operation"],
            row["all_operations"],
            row["kind"],
            row["status_code"],
        )
        found = existing.get(key)
        if found is None:
            continue
        row_id, count, errors, hist, exemplars = found
        group = Group(
            count=count, errors=errors, histogram=LatencyHistogram.from_json(_json(hist)), exemplars=_json(exemplars)
        )
        group.merge(row["count"], row["error_count"], LatencyHistogram.from_json(row["histogram"]), row["exemplars"])
        row.update(
            count=group.count, error_count=group.errors, histogram=group.histogram.to_json(), exemplars=group.exemplars
        )
    cursor.execute(
        f"""
        INSERT INTO dashboards_spanrollup ({_KEY_COLUMNS}, count, error_count, histogram, exemplars)
        SELECT {_KEY_COLUMNS}, count, error_count, histogram, exemplars FROM json_to_recordset(%s::json) AS u({_RECORD})
        ON CONFLICT ({_KEY_COLUMNS}) DO UPDATE SET count = excluded.count, error_count = excluded.error_count,
            histogram = excluded.histogram, exemplars = excluded.exemplars
        """,
        [orjson.dumps(rows).decode()],
    )
    return len(rows)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def rollups_compact(*, max_deltas: int = 2000) -> CompactReport:
    """Merge pending rollup deltas into minute and hour rollups. Safe to call concurrently: one runs, others skip."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_COMPACT_LOCK])
        if not cursor.fetchone()[0]:
            return CompactReport(deltas=0, rows_written=0, busy=True)
        cursor.execute("SELECT id, project_id, payload FROM dashboards_rollupdelta ORDER BY id LIMIT %s", [max_deltas])
        deltas = cursor.fetchall()
        if not deltas:
            return CompactReport(deltas=0, rows_written=0)
        by_project: dict[int, list[dict[str, Any]]] = {}
        for _id, project_id, payload in deltas:
            by_project.setdefault(project_id, []).append(_json(payload))
        rows: list[dict[str, Any]] = []
        for project_id, payloads in by_project.items():
            for resolution in (MINUTE, HOUR):
                rows += _rows_for(project_id, resolution, deltas_merge(payloads, resolution=resolution))
        written = _merge_into_table(cursor, rows)
        cursor.execute("DELETE FROM dashboards_rollupdelta WHERE id = ANY(%s)", [[d[0] for d in deltas]])
    return CompactReport(deltas=len(deltas), rows_written=written)
