"""Rollups: recorded with the spans at ingest, merged by compaction, exact, and served as RED metrics."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from rest_framework.test import APIClient

from dashboards.histogram import LatencyHistogram
from dashboards.models import RollupDelta, SpanRollup
from dashboards.services import rollups_compact
from tests.conftest import now_ns, otlp_request, post_otlp

MS = 1_000_000


def _checkout_batch(start: int, durations_ms: list[int], *, errors: int = 0) -> Any:
    """One SERVER span per duration in service checkout, each with a CLIENT child; the first `errors` fail."""
    spans = []
    for index, duration in enumerate(durations_ms):
        trace = secrets.token_hex(16)
        root = secrets.token_hex(8)
        spans.append(
            {
                "trace_id": trace,
                "span_id": root,
                "name": "POST /checkout",
                "start": start + index,
                "end": start + index + duration * MS,
                "error": index < errors,
            }
        )
        spans.append(
            {
                "trace_id": trace,
                "span_id": secrets.token_hex(8),
                "parent_span_id": root,
                "kind": 3,
                "name": "charge",
                "start": start + index + MS,
                "end": start + index + 2 * MS,
            }
        )
    return otlp_request(spans, service="checkout")


def _rows(**filters: Any) -> list[SpanRollup]:
    return list(SpanRollup.objects.filter(**filters).order_by("operation", "kind", "status_code"))


def test_it_records_one_delta_per_batch_and_compaction_makes_exact_minute_and_hour_rollups(
    client: Any, ingest_token: str
) -> None:
    start = now_ns() - 5 * 10**9
    durations = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000]
    post_otlp(client, _checkout_batch(start, durations, errors=2), ingest_token)
    assert RollupDelta.objects.count() == 1

    report = rollups_compact()
    assert report.deltas == 1 and RollupDelta.objects.count() == 0
    minute = _rows(resolution=60, all_operations=False, operation="POST /checkout")
    assert [(r.status_code, r.count, r.error_count) for r in minute] == [(0, 8, 0), (2, 2, 2)]
    ok = LatencyHistogram.from_json(minute[0].histogram)
    slowest = ok.quantile(1.0)
    assert ok.count == 8 and slowest is not None and abs(slowest - 1000 * MS) <= 0.02 * 1000 * MS
    assert minute[0].exemplars[0]["duration_ns"] == 1000 * MS, "the slowest span is kept as an exemplar"
    totals = _rows(resolution=3600, all_operations=True, kind=2)
    assert sum(r.count for r in totals) == 10 and sum(r.error_count for r in totals) == 2


def test_a_resent_batch_is_not_counted_twice(client: Any, ingest_token: str) -> None:
    request = _checkout_batch(now_ns() - 10**9, [10, 20, 30])
    post_otlp(client, request, ingest_token)
    post_otlp(client, request, ingest_token)
    rollups_compact()
    assert sum(r.count for r in _rows(resolution=60, all_operations=False, kind=2)) == 3


def test_compacting_in_steps_gives_the_same_rollups_as_at_once(client: Any, ingest_token: str) -> None:
    start = now_ns() - 5 * 10**9
    post_otlp(client, _checkout_batch(start, [10, 20, 30], errors=1), ingest_token)
    rollups_compact()
    post_otlp(client, _checkout_batch(start + 100, [40, 50], errors=1), ingest_token)
    rollups_compact()
    rows = _rows(resolution=60, all_operations=True, kind=2)
    assert sum(r.count for r in rows) == 5 and sum(r.error_count for r in rows) == 2
    merged = LatencyHistogram()
    for row in rows:
        merged.merge(LatencyHistogram.from_json(row.histogram))
    assert merged.count == 5 and merged.sum == sum(d * MS for d in [10, 20, 30, 40, 50])


def test_compaction_runs_once_at_a_time(db: None) -> None:
    import psycopg
    from django.db import connection

    from dashboards.services import _COMPACT_LOCK

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [_COMPACT_LOCK])
        assert rollups_compact().busy is True


def test_rollups_can_be_turned_off(client: Any, ingest_token: str, settings: Any) -> None:
    settings.ROLLUPS_ENABLED = False
    post_otlp(client, _checkout_batch(now_ns(), [10]), ingest_token)
    assert RollupDelta.objects.count() == 0


def test_the_beat_task_compacts(client: Any, ingest_token: str) -> None:
    from dashboards.tasks import rollups_compact_task

    post_otlp(client, _checkout_batch(now_ns() - 10**9, [10, 20]), ingest_token)
    assert rollups_compact_task.apply().get() == 1
    assert RollupDelta.objects.count() == 0


def test_the_services_api_serves_red_metrics_from_rollups(client: Any, ingest_token: str, api: APIClient) -> None:
    start = now_ns() - 120 * 10**9
    durations = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100] * 2
    post_otlp(client, _checkout_batch(start, durations, errors=5), ingest_token)

    import datetime as dt

    from django.utils import timezone

    RollupDelta.objects.update(created_at=timezone.now() - dt.timedelta(seconds=60))
    before = api.get("/api/v1/services/").json()
    assert before["services"] == [], "dashboards read rollups only, never raw spans"
    assert before["lag_seconds"] >= 50, "the rollup lag is visible"
    rollups_compact()
    body = api.get("/api/v1/services/", {"lookback": "15m"}).json()
    (checkout,) = body["services"]
    assert checkout["name"] == "checkout" and checkout["measured_on"] == "entry spans"
    assert checkout["requests"] == 20 and checkout["errors"] == 5 and checkout["error_percent"] == 25.0
    assert checkout["rate_per_second"] == pytest.approx(20 / 900, abs=0.001)
    exact_p95 = sorted(durations)[int(0.95 * 19)] * MS
    assert abs(checkout["p95_ns"] - exact_p95) <= 0.02 * exact_p95
    assert sum(checkout["series"]["rate"]) * body["window"]["step_seconds"] == pytest.approx(20, abs=0.1)
    assert body["lag_seconds"] == 0


def test_the_services_api_rejects_bad_windows(api: APIClient) -> None:
    assert api.get("/api/v1/services/", {"lookback": "soon"}).status_code == 400
    assert api.get("/api/v1/services/", {"start": "2030-01-01", "end": "2029-01-01"}).status_code == 400
    assert api.get("/api/v1/services/", {"lookback": "90d"}).status_code == 400


def test_the_service_api_gives_series_operations_exemplars_and_error_traces(
    client: Any, ingest_token: str, api: APIClient
) -> None:
    start = now_ns() - 300 * 10**9
    request = _checkout_batch(start, [10, 20, 30, 40, 2000], errors=1)
    slow_trace = request.resource_spans[0].scope_spans[0].spans[8].trace_id.hex()  # the 2 s request
    error_trace = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    post_otlp(client, request, ingest_token)
    rollups_compact()

    body = api.get("/api/v1/services/checkout/", {"lookback": "1h"}).json()
    assert body["totals"]["requests"] == 5 and body["totals"]["errors"] == 1
    assert sum(body["series"]["rate"]) * body["window"]["step_seconds"] == pytest.approx(5, abs=0.1)
    assert len(body["series"]["t"]) == len(body["series"]["p95_ns"]) == len(body["series"]["error_percent"])
    operations = {(op["name"], op["kind"]): op for op in body["operations"]}
    assert operations[("POST /checkout", "SERVER")]["requests"] == 5
    assert operations[("charge", "CLIENT")]["requests"] == 5
    assert body["slowest_traces"][0]["trace_id"] == slow_trace, "the slowest request is one click away"
    assert any(point["trace_id"] == slow_trace for point in body["exemplars"])
    assert any(point["trace_id"] == error_trace and point["error"] for point in body["exemplars"])
    assert [t["trace_id"] for t in body["recent_error_traces"]] == [error_trace]


def test_the_service_api_answers_404_for_an_unknown_service(api: APIClient) -> None:
    response = api.get("/api/v1/services/nope/")
    assert response.status_code == 404 and "nope" in response.json()["error"]
