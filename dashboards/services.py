"""Writes of the dashboards app: recording rollup deltas at ingest and compacting them into rollups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import connection, transaction

from .histogram import LatencyHistogram
from .rollups import HOUR, MINUTE, Group, GroupKey, delta_payload, deltas_merge
from .selectors import EDGE_SPAN_COLUMNS

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
        cursor.execute(
            "SELECT id, project_id, payload, created_at FROM dashboards_rollupdelta ORDER BY id LIMIT %s", [max_deltas]
        )
        deltas = cursor.fetchall()
        if not deltas:
            return CompactReport(deltas=0, rows_written=0)
        by_project: dict[int, list[dict[str, Any]]] = {}
        # When each trace last received spans (its latest batch's ingest time), to pair it once it has gone idle.
        seen: dict[int, dict[str, dt.datetime]] = {}
        for _id, project_id, payload, created_at in deltas:
            parsed = _json(payload)
            by_project.setdefault(project_id, []).append(parsed)
            touched = seen.setdefault(project_id, {})
            for trace_id in parsed.get("traces", ()):
                if trace_id not in touched or touched[trace_id] < created_at:
                    touched[trace_id] = created_at
        rows: list[dict[str, Any]] = []
        for project_id, payloads in by_project.items():
            for resolution in (MINUTE, HOUR):
                rows += _rows_for(project_id, resolution, deltas_merge(payloads, resolution=resolution))
        written = _merge_into_table(cursor, rows)
        for project_id, touched in seen.items():
            _edge_states_touch(cursor, project_id=project_id, last_seen=touched)
        cursor.execute("DELETE FROM dashboards_rollupdelta WHERE id = ANY(%s)", [[d[0] for d in deltas]])
    return CompactReport(deltas=len(deltas), rows_written=written)


def _edge_states_touch(cursor: Any, *, project_id: int, last_seen: dict[str, dt.datetime]) -> None:
    """Mark traces that received spans as pending for edge pairing (run by the single compactor, so no races).

    `last_seen` is the ingest time of each trace's latest batch: pairing follows ingest order, so a batch of
    pending traces is close in time and its edge rollup rows are few."""
    if not last_seen:
        return
    ordered = sorted(last_seen.items())
    cursor.execute(
        """
        INSERT INTO dashboards_traceedgestate AS st (project_id, trace_id, last_seen, pending, contribution)
        SELECT %s, t, seen, true, '' FROM unnest(%s::uuid[], %s::timestamptz[]) AS u(t, seen) ORDER BY 2
        ON CONFLICT (project_id, trace_id) DO UPDATE SET last_seen = greatest(st.last_seen, excluded.last_seen),
            pending = true
        """,
        [project_id, [t for t, _ in ordered], [when for _, when in ordered]],
    )


@dataclass(frozen=True)
class EdgeRollupReport:
    traces: int
    rows_written: int
    pending: int = 0  # traces still waiting, idle or not, counted up to PENDING_COUNTED
    busy: bool = False


# The caller only needs "more to do" and a rough size: counting every pending trace after each batch cost 0.12 s
# at a backlog of 180k traces, a third of what pairing the batch of 1,000 then took.
PENDING_COUNTED = 10_000


# Traces waiting to be paired, oldest first; bounded by spans as well as traces so one huge trace goes alone.
_EDGE_PENDING_SQL = """
SELECT st.project_id, st.trace_id, t.start_ns, t.end_ns, coalesce(t.span_count, 0), st.contribution
FROM dashboards_traceedgestate st
LEFT JOIN traces t ON t.project_id = st.project_id AND t.trace_id = st.trace_id
WHERE st.pending AND st.last_seen <= now() - make_interval(secs => %s)
ORDER BY st.last_seen
LIMIT %s
"""
# One index probe per trace within its own time window: pending traces were ingested together but their spans can
# lie hours apart, and one window over all of them made PostgreSQL scan every span in between. `project_id + 0`
# keeps each probe on the trace-id index without statistics (traces/selectors.py): 30 ms per 1,000 traces, not 5 s.
_EDGE_SPANS_SQL = f"""
SELECT q.trace_id, {EDGE_SPAN_COLUMNS}
FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[]) AS q(trace_id, lo, hi)
CROSS JOIN LATERAL (
    SELECT * FROM spans s WHERE s.project_id + 0 = %s AND s.trace_id = q.trace_id AND s.start_ns BETWEEN q.lo AND q.hi
    OFFSET 0  -- keeps the subquery a per-trace probe: flattened, it became a parallel scan of whole partitions
) s
"""
_EDGE_KEY_COLUMNS = "project_id, resolution, bucket, caller, callee, callee_kind, connection"
_EDGE_RECORD = (
    "project_id int, resolution int, bucket timestamptz, caller text, callee text, callee_kind text, "
    "connection text, count bigint, error_count bigint, histogram jsonb, server_histogram jsonb, exemplars jsonb"
)


def edges_rollup(
    *, idle_seconds: float | None = None, max_traces: int = 5000, max_spans: int = 200_000
) -> EdgeRollupReport:
    """Pair the spans of traces idle for `idle_seconds` (default settings.EDGE_IDLE_SECONDS) into edge rollups.

    A trace paired before (late spans arrived) contributes only the difference to what it added then, so edge
    rollups count every call once. Shares the compactor's lock: one writer, and trace states are only marked
    pending by the compactor, so no row races.

    Batches are large because every batch rewrites each edge rollup row it touches, and the traces that go idle
    together share their minutes: 5,000 traces a batch paired 1.6x faster than 1,000.
    """
    from django.conf import settings

    from .edge_rollups import (
        Instance,
        contribution_changes,
        contribution_dumps,
        contribution_loads,
        contribution_of,
        exemplar_candidates,
        exemplars_keep,
        exemplars_pick,
    )
    from .edges import EdgeSpan, edges_from_trace

    idle = settings.EDGE_IDLE_SECONDS if idle_seconds is None else idle_seconds
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_COMPACT_LOCK])
        if not cursor.fetchone()[0]:
            return EdgeRollupReport(traces=0, rows_written=0, busy=True)
        cursor.execute(_EDGE_PENDING_SQL, [idle, max_traces])
        batch: list[tuple[Any, ...]] = []
        spans_planned = 0
        for row in cursor.fetchall():
            if batch and spans_planned + row[4] > max_spans:
                break
            batch.append(row)
            spans_planned += row[4]
        if not batch:
            return EdgeRollupReport(traces=0, rows_written=0, pending=_edge_pending_count(cursor))

        changes: list[tuple[int, Instance, int]] = []
        candidates: dict[tuple[int, tuple[Any, ...]], list[tuple[Any, ...]]] = {}
        states: dict[int, list[dict[str, str]]] = {}
        for project_id in sorted({row[0] for row in batch}):
            mine = [row for row in batch if row[0] == project_id]
            spans_by_trace: dict[Any, list[EdgeSpan]] = {row[1]: [] for row in mine}
            windows = [row for row in mine if row[2] is not None]
            if windows:
                cursor.execute(
                    _EDGE_SPANS_SQL,
                    [[row[1] for row in windows], [row[2] for row in windows], [row[3] for row in windows], project_id],
                )
                for trace_id, *fields in cursor.fetchall():
                    spans_by_trace[trace_id].append(EdgeSpan(*fields))
            for _project, trace_id, _start, _end, _count, old_text in mine:
                spans = spans_by_trace[trace_id]
                if not spans:
                    # Raw spans gone (retention) or not visible yet: keep what was counted, never take it back.
                    states.setdefault(project_id, []).append({"trace_id": str(trace_id), "c": old_text})
                    continue
                found = edges_from_trace(spans)
                new = contribution_of(found)
                trace_changes = contribution_changes(contribution_loads(old_text), new)
                if trace_changes:
                    changes += [(project_id, instance, n) for instance, n in trace_changes]
                    for key, candidate in exemplar_candidates(found, trace_id=trace_id.hex):
                        candidates.setdefault((project_id, key), []).append(candidate)
                states.setdefault(project_id, []).append({"trace_id": str(trace_id), "c": contribution_dumps(new)})

        by_key: dict[tuple[int, int, Any], list[tuple[Instance, int]]] = {}
        for project_id, instance, n in changes:
            minute, caller, callee, kind, conn = instance[:5]
            by_key.setdefault((project_id, MINUTE, (minute, caller, callee, kind, conn)), []).append((instance, n))
            hour = minute // HOUR * HOUR
            by_key.setdefault((project_id, HOUR, (hour, caller, callee, kind, conn)), []).append((instance, n))
        groups = _edge_groups_load(cursor, set(by_key))
        for key, key_changes in by_key.items():
            groups[key].apply_many(key_changes)
        # Examples: the best few calls per minute, then per hour from those, each group merged once.
        picked: dict[tuple[int, int, Any], list[dict[str, Any]]] = {}
        for (project_id, (minute, *rest)), found_calls in candidates.items():
            chosen = exemplars_pick(found_calls)
            picked[(project_id, MINUTE, (minute, *rest))] = chosen
            picked.setdefault((project_id, HOUR, (minute // HOUR * HOUR, *rest)), []).extend(chosen)
        for key, items in picked.items():
            group = groups.get(key)
            if group is not None:
                group.exemplars = exemplars_keep([*group.exemplars, *items])
        written = _edge_groups_write(cursor, groups)
        for project_id, rows in states.items():
            cursor.execute(
                """
                UPDATE dashboards_traceedgestate st SET pending = false, contribution = u.c
                FROM json_to_recordset(%s::json) AS u(trace_id uuid, c text)
                WHERE st.project_id = %s AND st.trace_id = u.trace_id
                """,
                [orjson.dumps(rows).decode(), project_id],
            )
        pending = _edge_pending_count(cursor)
    return EdgeRollupReport(traces=len(batch), rows_written=written, pending=pending)


def _edge_pending_count(cursor: Any) -> int:
    cursor.execute(
        "SELECT count(*) FROM (SELECT 1 FROM dashboards_traceedgestate WHERE pending LIMIT %s) p", [PENDING_COUNTED]
    )
    return int(cursor.fetchone()[0])


def _edge_rows(groups: Any) -> list[dict[str, Any]]:
    return [
        {
            "project_id": project_id,
            "resolution": resolution,
            "bucket": dt.datetime.fromtimestamp(bucket, tz=dt.UTC).isoformat(),
            "caller": caller,
            "callee": callee,
            "callee_kind": kind,
            "connection": conn,
        }
        for (project_id, resolution, (bucket, caller, callee, kind, conn)) in groups
    ]


def _edge_groups_load(cursor: Any, keys: set[tuple[int, int, Any]]) -> dict[tuple[int, int, Any], Any]:
    """The stored edge rollup rows for these keys (an empty group for each key not stored yet)."""
    from .edge_rollups import EdgeGroup

    groups: dict[tuple[int, int, Any], EdgeGroup] = {key: EdgeGroup() for key in keys}
    if not keys:
        return groups
    cursor.execute(
        f"""
        SELECT r.project_id, r.resolution, r.bucket, r.caller, r.callee, r.callee_kind, r.connection,
               r.count, r.error_count, r.histogram, r.server_histogram, r.exemplars
        FROM dashboards_edgerollup r JOIN json_to_recordset(%s::json) AS u({_EDGE_RECORD}) USING ({_EDGE_KEY_COLUMNS})
        """,
        [orjson.dumps(_edge_rows(groups)).decode()],
    )
    for project_id, resolution, bucket, caller, callee, kind, conn, count, errors, hist, server, ex in cursor:
        groups[(project_id, resolution, (int(bucket.timestamp()), caller, callee, kind, conn))] = EdgeGroup(
            count=count,
            errors=errors,
            histogram=LatencyHistogram.from_json(_json(hist)),
            server_histogram=LatencyHistogram.from_json(_json(server)),
            exemplars=_json(ex),
        )
    return groups


def _edge_groups_write(cursor: Any, groups: dict[tuple[int, int, Any], Any]) -> int:
    """Upsert the changed edge groups (sorted, so the write order is stable)."""
    changed = sorted((key, group) for key, group in groups.items() if group.changed)
    if not changed:
        return 0
    rows = _edge_rows([key for key, _group in changed])
    for row, (_key, group) in zip(rows, changed, strict=True):
        row.update(
            count=group.count,
            error_count=group.errors,
            histogram=group.histogram.to_json(),
            server_histogram=group.server_histogram.to_json(),
            exemplars=group.exemplars,
        )
    cursor.execute(
        f"""
        INSERT INTO dashboards_edgerollup ({_EDGE_KEY_COLUMNS}, count, error_count, histogram, server_histogram,
                                          exemplars)
        SELECT {_EDGE_KEY_COLUMNS}, count, error_count, histogram, server_histogram, exemplars
        FROM json_to_recordset(%s::json) AS u({_EDGE_RECORD})
        ON CONFLICT ({_EDGE_KEY_COLUMNS}) DO UPDATE SET count = excluded.count, error_count = excluded.error_count,
            histogram = excluded.histogram, server_histogram = excluded.server_histogram,
            exemplars = excluded.exemplars
        """,
        [orjson.dumps(rows).decode()],
    )
    return len(rows)


def edge_states_expire(*, older_than_days: int) -> int:
    """Delete the pairing state of traces last seen before retention: their spans are gone, so no late span can
    re-pair them, and the rollups they fed stay as they are. Returns the number of states deleted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM dashboards_traceedgestate WHERE NOT pending AND last_seen < now() - make_interval(days => %s)",
            [older_than_days],
        )
        return int(cursor.rowcount)
