"""Daily partitions: created ahead, expired ones dropped whole, stray rows in the default partition handled."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from tests.conftest import otlp_request, post_otlp
from traces import partitions
from traces.services import span_partitions_maintain


def _partitions() -> list[str]:
    with connection.cursor() as cursor:
        return partitions.partitions_existing(cursor)


def _start_ns(day: dt.date, hour: int = 12) -> int:
    return partitions.day_start_ns(day) + hour * 3600 * 10**9


def test_it_creates_partitions_ahead_and_drops_expired_ones(db: None, settings: Any) -> None:
    settings.TRACE_RETENTION_DAYS = 7
    settings.TRACE_PARTITIONS_AHEAD_DAYS = 3
    today = dt.date(2031, 3, 10)
    with connection.cursor() as cursor:
        partitions.partition_create(cursor, dt.date(2031, 3, 1))  # expired by the 10th with 7 days retention
        partitions.partition_create(cursor, dt.date(2031, 3, 4))  # still inside retention

    report = span_partitions_maintain(today=today)

    assert report.created == [f"spans_2031031{d}" for d in range(0, 4)]
    assert "spans_20310301" in report.dropped
    assert "spans_20310304" not in report.dropped
    existing = _partitions()
    assert "spans_20310301" not in existing
    assert {"spans_20310304", "spans_20310310", "spans_20310313"} <= set(existing)
    assert span_partitions_maintain(today=today).created == [], "a second run has nothing to do"


def test_it_moves_rows_from_the_default_partition_when_their_day_gets_a_partition(
    client: Any, ingest_token: str
) -> None:
    future_day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {partitions.partition_name(future_day)}")
    start = _start_ns(future_day, hour=0) + 5
    span = {"trace_id": "ab" * 16, "span_id": "cd" * 8, "start": start}
    assert post_otlp(client, otlp_request([span]), ingest_token).status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM spans_default")
        assert cursor.fetchone() == (1,)
        assert partitions.partition_create(cursor, future_day) is True
        cursor.execute("SELECT count(*) FROM spans_default")
        assert cursor.fetchone() == (0,)
        cursor.execute(f"SELECT start_ns FROM {partitions.partition_name(future_day)}")
        assert cursor.fetchall() == [(start,)]


def test_the_beat_task_runs_the_maintenance(db: None) -> None:
    from traces.tasks import span_partitions_maintain_task

    result = span_partitions_maintain_task.apply().get()
    assert set(result) == {"created", "dropped"}
    today = dt.datetime.now(dt.UTC).date()
    assert partitions.partition_name(today + dt.timedelta(days=3)) in _partitions()


def test_retention_deletes_old_trace_summaries(client: Any, ingest_token: str, settings: Any) -> None:
    settings.TRACE_RETENTION_DAYS = 7
    old_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=30)
    span = {"trace_id": "ef" * 16, "span_id": "01" * 8, "start": _start_ns(old_day)}
    post_otlp(client, otlp_request([span]), ingest_token)
    span_partitions_maintain()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM traces WHERE trace_id = %s", ["ef" * 16])
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM spans WHERE trace_id = %s", ["ef" * 16])
        assert cursor.fetchone() == (0,)
