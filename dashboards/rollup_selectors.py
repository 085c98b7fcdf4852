"""Reads of the rollup tables: RED metrics per service. Never scans raw spans."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from .histogram import LatencyHistogram
from .models import SpanRollup
from .rollups import HOUR, MINUTE

ENTRY_KINDS = (2, 5)  # SERVER, CONSUMER: the requests a service answers
HOURLY_ABOVE_NS = 6 * 3600 * 10**9


def rollup_lag_seconds(*, project_ids: list[int]) -> float:
    """Age of the oldest span batch not yet merged into the rollups (0 when everything is rolled up)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM dashboards_rollupdelta "
            "WHERE project_id = ANY(%s)",
            [project_ids],
        )
        return round(float(cursor.fetchone()[0]), 1)


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)


def _quantiles(histogram: LatencyHistogram) -> dict[str, int | None]:
    p50, p95, p99 = histogram.quantiles((0.5, 0.95, 0.99))
    return {"p50_ns": _int(p50), "p95_ns": _int(p95), "p99_ns": _int(p99)}


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def service_red_list(*, project_ids: list[int], start_ns: int, end_ns: int, points: int = 30) -> dict[str, Any]:
    """Request rate, error % and latency percentiles per service, with sparkline series, from rollups.

    Requests are a service's SERVER and CONSUMER spans; a service with none (a batch job, a client-only process)
    is measured on all its spans instead.
    """
    resolution = MINUTE if end_ns - start_ns <= HOURLY_ABOVE_NS else HOUR
    first_bucket = start_ns // 10**9 // resolution * resolution
    step = max(resolution, -(-((end_ns - start_ns) // 10**9) // points // resolution) * resolution)
    rows = (
        SpanRollup.objects.filter(
            project_id__in=project_ids,
            resolution=resolution,
            all_operations=True,
            bucket__gte=_utc(first_bucket * 10**9),
            bucket__lt=_utc(end_ns),
        )
        .values_list("service_name", "kind", "bucket", "count", "error_count", "histogram")
        .order_by()
    )
    by_service: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_service.setdefault(row[0], []).append(row)
    window_s = (end_ns - start_ns) / 1e9
    slots = list(range(first_bucket, end_ns // 10**9 + 1, step))
    services = []
    for name, service_rows in sorted(by_service.items()):
        entry = [row for row in service_rows if row[1] in ENTRY_KINDS] or service_rows
        total = LatencyHistogram()
        count = errors = 0
        per_slot: dict[int, list[Any]] = {}
        for _service, _kind, bucket, n, e, histogram in entry:
            parsed = LatencyHistogram.from_json(histogram)
            total.merge(parsed)
            count += n
            errors += e
            slot = (int(bucket.timestamp()) - first_bucket) // step * step + first_bucket
            acc = per_slot.setdefault(slot, [0, 0, LatencyHistogram()])
            acc[0] += n
            acc[1] += e
            acc[2].merge(parsed)
        series: dict[str, list[Any]] = {"t": [], "rate": [], "error_percent": [], "p95_ns": []}
        for slot in slots:
            n, e, histogram = per_slot.get(slot, (0, 0, None))
            series["t"].append(slot)
            series["rate"].append(round(n / step, 3))
            series["error_percent"].append(round(100 * e / n, 2) if n else None)
            series["p95_ns"].append(_int(histogram.quantile(0.95)) if histogram is not None else None)
        services.append(
            {
                "name": name,
                "requests": count,
                "rate_per_second": round(count / window_s, 3),
                "errors": errors,
                "error_percent": round(100 * errors / count, 2) if count else 0.0,
                **_quantiles(total),
                "measured_on": "entry spans" if entry is not service_rows else "all spans",
                "series": series,
            }
        )
    return {
        "window": {
            "start_ns": str(start_ns),
            "end_ns": str(end_ns),
            "resolution_seconds": resolution,
            "step_seconds": step,
        },
        "lag_seconds": rollup_lag_seconds(project_ids=project_ids),
        "services": services,
    }


def _series(
    rows: list[tuple[Any, ...]], *, slots: list[int], first_bucket: int, step: int
) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """Per-slot rate, error %, percentiles, and the slowest exemplar of each slot (for markers on the chart)."""
    per_slot: dict[int, list[Any]] = {}
    for bucket, n, e, histogram, exemplars in rows:
        slot = (int(bucket.timestamp()) - first_bucket) // step * step + first_bucket
        acc = per_slot.setdefault(slot, [0, 0, LatencyHistogram(), []])
        acc[0] += n
        acc[1] += e
        acc[2].merge(LatencyHistogram.from_json(histogram))
        acc[3].extend(exemplars or [])
    series: dict[str, list[Any]] = {"t": [], "rate": [], "error_percent": [], "p50_ns": [], "p95_ns": [], "p99_ns": []}
    exemplar_points = []
    for slot in slots:
        n, e, histogram, exemplars = per_slot.get(slot, (0, 0, None, []))
        series["t"].append(slot)
        series["rate"].append(round(n / step, 3))
        series["error_percent"].append(round(100 * e / n, 2) if n else None)
        quantiles = histogram.quantiles((0.5, 0.95, 0.99)) if histogram is not None else (None, None, None)
        for key, value in zip(("p50_ns", "p95_ns", "p99_ns"), quantiles, strict=True):
            series[key].append(_int(value))
        if exemplars:
            slowest = max(exemplars, key=lambda item: item["duration_ns"])
            exemplar_points.append({"t": slot, **slowest})
            errors = [item for item in exemplars if item.get("error")]
            if errors and errors[0] is not slowest:
                exemplar_points.append({"t": slot, **errors[0]})
    return series, exemplar_points


def service_red_detail(
    *, project_ids: list[int], service: str, start_ns: int, end_ns: int, points: int = 60
) -> dict[str, Any] | None:
    """RED metrics of one service over time, per operation, with exemplar traces and its upstream and downstream
    neighbours; None when nothing is known."""
    from traces.selectors import TraceQuery, trace_search

    from .map_selectors import service_neighbours

    resolution = MINUTE if end_ns - start_ns <= HOURLY_ABOVE_NS else HOUR
    first_bucket = start_ns // 10**9 // resolution * resolution
    step = max(resolution, -(-((end_ns - start_ns) // 10**9) // points // resolution) * resolution)
    rows = list(
        SpanRollup.objects.filter(
            project_id__in=project_ids,
            resolution=resolution,
            service_name=service,
            bucket__gte=_utc(first_bucket * 10**9),
            bucket__lt=_utc(end_ns),
        )
        .values_list("all_operations", "operation", "kind", "bucket", "count", "error_count", "histogram", "exemplars")
        .order_by()
    )
    if not rows:
        from traces.models import Operation

        if not Operation.objects.filter(project_id__in=project_ids, service_name=service).exists():
            return None
    window_s = (end_ns - start_ns) / 1e9
    totals = [row for row in rows if row[0]]
    entry = [row for row in totals if row[2] in ENTRY_KINDS] or totals
    slots = list(range(first_bucket, end_ns // 10**9 + 1, step))
    series, exemplars = _series([row[3:] for row in entry], slots=slots, first_bucket=first_bucket, step=step)
    total = LatencyHistogram()
    for row in entry:
        total.merge(LatencyHistogram.from_json(row[6]))
    requests, errors = sum(row[4] for row in entry), sum(row[5] for row in entry)

    operations: dict[tuple[str, int], list[Any]] = {}
    for _all, operation, kind, _bucket, n, e, histogram, _exemplars in (row for row in rows if not row[0]):
        acc = operations.setdefault((operation, kind), [0, 0, LatencyHistogram()])
        acc[0] += n
        acc[1] += e
        acc[2].merge(LatencyHistogram.from_json(histogram))
    kinds = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
    operation_rows = [
        {
            "name": name,
            "kind": kinds[kind] if 0 <= kind < len(kinds) else str(kind),
            "requests": n,
            "rate_per_second": round(n / window_s, 3),
            "errors": e,
            "error_percent": round(100 * e / n, 2) if n else 0.0,
            **_quantiles(histogram),
            # Jaeger's "impact": how much of the service's time this operation accounts for.
            "total_ns": histogram.sum,
        }
        for (name, kind), (n, e, histogram) in operations.items()
    ]
    operation_rows.sort(key=lambda op: op["total_ns"], reverse=True)
    slowest = sorted(
        (item for row in entry for item in (row[7] or [])), key=lambda item: item["duration_ns"], reverse=True
    )
    slowest_traces: list[dict[str, Any]] = []
    for item in slowest:  # one entry per trace
        if len(slowest_traces) < 10 and all(other["trace_id"] != item["trace_id"] for other in slowest_traces):
            slowest_traces.append(item)
    recent_errors = trace_search(
        project_ids=project_ids,
        query=TraceQuery(start_ns=start_ns, end_ns=end_ns, service=service, status="error", limit=10),
    )
    return {
        "name": service,
        "window": {
            "start_ns": str(start_ns),
            "end_ns": str(end_ns),
            "resolution_seconds": resolution,
            "step_seconds": step,
        },
        "lag_seconds": rollup_lag_seconds(project_ids=project_ids),
        "totals": {
            "requests": requests,
            "rate_per_second": round(requests / window_s, 3),
            "errors": errors,
            "error_percent": round(100 * errors / requests, 2) if requests else 0.0,
            **_quantiles(total),
        },
        "series": series,
        "exemplars": exemplars,
        "operations": operation_rows,
        "slowest_traces": slowest_traces,
        "recent_error_traces": recent_errors,
        **service_neighbours(project_ids=project_ids, service=service, start_ns=start_ns, end_ns=end_ns),
    }
