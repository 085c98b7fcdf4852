"""Trace-by-ID benchmark: GET /api/v1/traces/<id> for traces of 100, 10,000 and 100,000 spans.

The traces are realistic trees (fan-out at every level, 6 / 8 / 10 levels deep, several services) stored through
the app's own path (batch_build + services.span_batch_store, 512 spans per batch) into the bench span store, once:
later runs find them by their fixed trace IDs. Each is then fetched over HTTP from gunicorn with a personal API
token, and separately timed DB-only (traces.selectors.trace_document, which renders the JSON in PostgreSQL).
"""

from __future__ import annotations

import hashlib
import http.client
import random
import time
import uuid

from .common import Credentials, Report, Server, http_get, human_bytes, percentile, say
from .gen import batches, request_build, tree_trace

SECTION = "trace"
COMMAND = "python -m bench trace"
# (spans, depth, timed repetitions)
SIZES = ((100, 6, 30), (10_000, 8, 20), (100_000, 10, 5))


def bench_trace_id(n_spans: int) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.md5(f"tracing-ui bench trace {n_spans}".encode()).digest())


def trace_ensure(creds: Credentials, n_spans: int, depth: int) -> tuple[uuid.UUID, bool]:
    """Store the bench trace of n_spans unless it is already there, complete. Returns (id, inserted)."""
    from django.db import connection

    from traces.ingest.redaction import Redactor
    from traces.ingest.rows import batch_build
    from traces.models import TraceSummary
    from traces.services import span_batch_store

    trace_id = bench_trace_id(n_spans)
    summary = TraceSummary.objects.filter(trace_id=trace_id, project_id=creds.project_id).first()
    if summary is not None and summary.span_count == n_spans:
        return trace_id, False
    with connection.cursor() as cursor:
        # Leftovers of an interrupted insert: start over so the span count is exact.
        cursor.execute("DELETE FROM spans WHERE trace_id = %s", [trace_id])
        cursor.execute("DELETE FROM traces WHERE trace_id = %s", [trace_id])
    rng = random.Random(n_spans)
    start_ns = time.time_ns() - 30 * 60 * 1_000_000_000
    specs = tree_trace(rng, n_spans, depth=depth, trace_id=trace_id.bytes, start_ns=start_ns)
    for chunk in batches([specs]):
        batch = batch_build(request_build(chunk), project_id=creds.project_id, redactor=Redactor(rules=[]))
        span_batch_store(project_id=creds.project_id, batch=batch)
    return trace_id, True


def run(report: Report, *, creds: Credentials, server: Server, reps_scale: int = 1) -> None:
    from django.contrib.auth import get_user_model

    from traces.selectors import project_ids_visible, trace_document

    print(f"\n-- trace: {COMMAND}")
    project_ids = project_ids_visible(user=get_user_model().objects.get(username="bench"))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    for n_spans, depth, reps in SIZES:
        reps *= reps_scale
        started = time.perf_counter()
        trace_id, inserted = trace_ensure(creds, n_spans, depth)
        if inserted:
            say(f"stored the {n_spans:,}-span trace {trace_id.hex} in {time.perf_counter() - started:.1f}s")
        path = f"/api/v1/traces/{trace_id.hex}"
        status, body = http_get(conn, path, creds.api_token)  # warm-up: caches, connection
        if status != 200:
            say(f"GET {path} answered {status}: {body[:200]!r}")
            continue
        http_times = []
        for _ in range(reps):
            sent = time.perf_counter()
            status, body = http_get(conn, path, creds.api_token)
            http_times.append(time.perf_counter() - sent)
        db_times = []
        trace_document(project_ids=project_ids, trace_id=trace_id)
        for _ in range(reps):
            sent = time.perf_counter()
            document = trace_document(project_ids=project_ids, trace_id=trace_id)
            db_times.append(time.perf_counter() - sent)
        assert document is not None
        report.add(
            SECTION,
            f"{n_spans:,}-span trace, HTTP p50 / p95 / p99 (ms)",
            " / ".join(_ms(percentile(http_times, p)) for p in (50, 95, 99)),
            command=COMMAND,
            note=f"{reps} reps, response {human_bytes(len(body))} ({len(body) / n_spans:,.0f} B/span), depth {depth}",
        )
        report.add(
            SECTION,
            f"{n_spans:,}-span trace, DB-only trace_document p50/p95/p99 (ms)",
            " / ".join(_ms(percentile(db_times, p)) for p in (50, 95, 99)),
            command=COMMAND,
            note=f"{reps} reps, in-process selector (SQL + JSON rendering in PostgreSQL), {human_bytes(len(document))}",
        )
    conn.close()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}" if seconds < 1 else f"{seconds * 1000:,.0f}"
