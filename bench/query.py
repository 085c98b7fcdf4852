"""Search benchmark: GET /api/v1/traces with typical queries against the loaded bench store.

Time windows are anchored at the newest trace in the store (not the wall clock), so "last hour" means the last hour
of data even when the store was loaded a while ago. Every query runs 3 times untimed first (warm cache), then
`reps` times over HTTP (gunicorn, API token) and `reps` times DB-only (traces.selectors.trace_search in-process).
"""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlencode

import orjson

from .common import NS_PER_S, Credentials, Report, Server, connect, http_get, percentile, say

SECTION = "search"
HOUR_NS = 3600 * NS_PER_S
WARM_RUNS = 3

# (label, parameters, window). checkout's "POST /api/orders" has a 50 ms median (lognormal, sigma 0.8): 150 ms is
# exceeded by ~8% of its spans, 500 ms by ~0.2% (the search then walks many index pages to fill 20 results).
QUERIES: tuple[tuple[str, dict[str, Any], int], ...] = (
    ("last 1h, no filters (traces table)", {}, HOUR_NS),
    ("service, 1h", {"service": "checkout"}, HOUR_NS),
    ("service + operation, 1h", {"service": "checkout", "operation": "POST /api/orders"}, HOUR_NS),
    (
        "service + operation + min_duration 150ms, 1h",
        {"service": "checkout", "operation": "POST /api/orders", "min_duration": "150ms"},
        HOUR_NS,
    ),
    (
        "service + operation + min_duration 500ms (rare), 1h",
        {"service": "checkout", "operation": "POST /api/orders", "min_duration": "500ms"},
        HOUR_NS,
    ),
    ("status=error, 1h", {"status": "error"}, HOUR_NS),
    ("service + status=error, 1h", {"service": "payments", "status": "error"}, HOUR_NS),
    (
        "service + attr http.response.status_code=500, 1h",
        {"service": "checkout", "attr": "http.response.status_code=500"},
        HOUR_NS,
    ),
    ("attr only app.tenant=t7 (2% of spans), 1h", {"attr": "app.tenant=t7"}, HOUR_NS),
    # The user is picked from the newest span (see selective_user), so the query has at least one hit.
    ("attr only app.user_id=<one user> (selective), 24h", {"attr": "app.user_id={user}"}, 24 * HOUR_NS),
    ("service + operation, 24h", {"service": "checkout", "operation": "POST /api/orders"}, 24 * HOUR_NS),
)


def anchor_ns(creds: Credentials) -> int:
    with connect(creds.url) as conn:
        row = conn.execute("SELECT max(start_ns) FROM traces WHERE project_id = %s", [creds.project_id]).fetchone()
    newest = int(row[0]) if row and row[0] is not None else time.time_ns()
    return min(time.time_ns(), newest + NS_PER_S)


def selective_user(creds: Credentials, end_ns: int) -> str:
    """A user id seen in the newest spans: ~1 in 100,000 spans carries it (about 10 spans a week per 1M/day)."""
    with connect(creds.url) as conn:
        row = conn.execute(
            "SELECT attributes->>'app.user_id' FROM spans WHERE project_id = %s AND start_ns >= %s AND start_ns < %s "
            "AND attributes ? 'app.user_id' ORDER BY start_ns DESC LIMIT 1",
            [creds.project_id, end_ns - HOUR_NS, end_ns],
        ).fetchone()
    return str(row[0]) if row and row[0] else "u4242"


def run(report: Report, *, creds: Credentials, server: Server, reps: int, store_spans: int, held: int) -> None:
    from django.contrib.auth import get_user_model
    from django.http import QueryDict

    from traces.filters import TraceSearchForm
    from traces.selectors import project_ids_visible, trace_search

    command = f"BENCH_SPANS={store_spans} python -m bench search --reps {reps}"
    print(f"\n-- search: {command} (the store holds {held:,} spans)")
    end = anchor_ns(creds)
    say(f"windows end at the newest trace in the store: {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(end / 1e9))}Z")
    user = selective_user(creds, end)
    project_ids = project_ids_visible(user=get_user_model().objects.get(username="bench"))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    # The fixed cost of any API request (gunicorn, Django, DRF, token authentication) on a tiny query.
    floor = []
    for i in range(WARM_RUNS + reps):
        sent = time.perf_counter()
        http_get(conn, "/api/v1/services", creds.api_token)
        if i >= WARM_RUNS:
            floor.append(time.perf_counter() - sent)
    report.add(
        SECTION,
        "API floor: GET /api/v1/services",
        f"p50 {_ms(percentile(floor, 50))} / p99 {_ms(percentile(floor, 99))} ms",
        command=command,
        note="fixed per-request cost (HTTP, Django, DRF, API-token auth) on a 10-row query",
    )
    for label, params, window in QUERIES:
        params = {key: value.format(user=user) if isinstance(value, str) else value for key, value in params.items()}
        query_string = urlencode({**params, "start": str(end - window), "end": str(end)})
        path = f"/api/v1/traces?{query_string}"
        form = TraceSearchForm(QueryDict(query_string))
        if not form.is_valid():
            say(f"{label}: invalid query {form.errors}")
            continue
        query = form.query()
        for _ in range(WARM_RUNS):
            status, body = http_get(conn, path, creds.api_token)
        if status != 200:
            say(f"{label}: HTTP {status} {body[:200]!r}")
            continue
        found = len(orjson.loads(body)["traces"])
        http_times = []
        for _ in range(reps):
            sent = time.perf_counter()
            http_get(conn, path, creds.api_token)
            http_times.append(time.perf_counter() - sent)
        db_times = []
        for _ in range(reps):
            sent = time.perf_counter()
            trace_search(project_ids=project_ids, query=query)
            db_times.append(time.perf_counter() - sent)
        report.add(
            SECTION,
            label.replace("<one user>", user),
            f"p50 {_ms(percentile(http_times, 50))} / p99 {_ms(percentile(http_times, 99))} ms",
            command=command,
            note=f"DB-only trace_search p50 {_ms(percentile(db_times, 50))} / p99 {_ms(percentile(db_times, 99))} ms; "
            f"{found} traces returned",
        )
    conn.close()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"
