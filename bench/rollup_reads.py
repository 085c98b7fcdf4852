"""Rollup-backed reads: the services list and the service map over 1 h and 24 h of a store of N spans (default 10M).

    python -m bench map --spans 10000000

The store (database `tracing_ui_bench_map`) is filled through the real path only: OTLP/HTTP protobuf requests to
gunicorn, stored by the ingest code, which records rollup deltas; then the rollup pipeline catches up
(`rollups_compact()` until no delta is left, then `edges_rollup(idle_seconds=0)` until no trace is pending), run in
a child process with Django set up against the bench database. Nothing is written around the application.

Traces come from bench.gen.service_traces (cross-service call trees: paired CLIENT -> SERVER calls, SQL / Redis /
Kafka client spans, a Kafka consumer, an uninstrumented external API), ~11 spans each. A pool of requests (up to
POOL_SPANS spans) is generated once; it is sent again and again with every trace id XORed with a fresh mask and
every timestamp shifted (bench.gen.Restamper), so the fill costs the client almost no CPU and sweeps the last
24 hours in time order, as a live system's exporters would: each request covers seconds, and the newest requests
carry the current time.

A store that already holds N spans is reused as it is (a smaller one is dropped and refilled; `--reset` always
refills). When its newest span is more than an hour old, the windows end at that span (`end=` + `lookback=`)
rather than at the wall clock, so they still hold the data.

Then each read runs WARM_RUNS times untimed and `reps` times over HTTP (gunicorn, API token): p50 / p99 against the
issue's goal (under 300 ms).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlencode

import orjson

from .common import (
    BASE_DIR,
    MAP_DB,
    NS_PER_S,
    PY,
    CpuMeter,
    Credentials,
    Report,
    Server,
    child_env,
    connect,
    database_drop,
    db_name,
    http_get,
    human_bytes,
    percentile,
    provision,
    rate,
    say,
)
from .compactor import drain_phase
from .gen import Restamper, service_bodies
from .ingest import HttpRun, batch_post

SECTION = "map"
DEFAULT_SPANS = 10_000_000
POOL_SPANS = 131_072  # generated once (~7 s), then re-sent with new trace ids and times
DAY_NS = 86_400 * NS_PER_S
HOUR_NS = 3_600 * NS_PER_S
GOAL_SECONDS = 0.300
WARM_RUNS = 3
PROGRESS_SECONDS = 10.0
RESULT_PREFIX = "RESULT "
ROLLUP_TABLES = ("dashboards_spanrollup", "dashboards_edgerollup", "dashboards_traceedgestate")


# ---------------------------------------------------------------------------------------------------- fill


class _Plan:
    """Hands out the requests to send, in order: pool request k of cycle c, restamped for that cycle.

    The pool covers `cycle_ns` of time; the fill sends it `full` times and then the first requests of it once more
    (the tail, up to `tail_ns` into the pool), so it covers full * cycle_ns + tail_ns, about 24 hours. Cycle c is
    shifted to start at now(c) - (full - c) * cycle_ns - tail_ns, now(c) being the wall clock when the cycle starts:
    the cycles sweep the last 24 hours in order and the last request sent carries the current time.
    """

    def __init__(
        self, pool: list[tuple[Restamper, int]], *, target: int, pool_start_ns: int, cycle_ns: int, seed: int
    ) -> None:
        self.pool = pool
        pool_spans = sum(n for _r, n in pool)
        full, remainder = divmod(target, pool_spans)
        if remainder == 0:
            full, remainder = full - 1, pool_spans
        sent = 0
        self.tail_ns = cycle_ns
        for restamper, n in pool:
            sent += n
            if sent >= remainder:
                self.tail_ns = restamper.last_start_ns - pool_start_ns
                break
        self.full = full
        self.target = target
        self.cycle_ns = cycle_ns
        self.pool_start_ns = pool_start_ns
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.next = 0
        self.planned = 0
        self.cycle = -1
        self.mask = b""
        self.shift = 0

    def take(self) -> tuple[Restamper, int, bytes, int] | None:
        with self.lock:
            if self.planned >= self.target:
                return None
            cycle, index = divmod(self.next, len(self.pool))
            if cycle != self.cycle:
                self.cycle = cycle
                self.mask = self.rng.randbytes(16)
                cycle_start = time.time_ns() - (self.full - cycle) * self.cycle_ns - self.tail_ns
                self.shift = cycle_start - self.pool_start_ns
            self.next += 1
            restamper, n = self.pool[index]
            self.planned += n
            return restamper, n, self.mask, self.shift


def _send(port: int, token: str, plan: _Plan, clients: int, web_pids: list[int]) -> HttpRun:
    """Send the plan from `clients` threads with persistent connections, printing progress; like ingest.http_send."""
    run = HttpRun()
    lock = threading.Lock()
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            item = plan.take()
            if item is None:
                break
            restamper, n_spans, mask, shift = item
            body = restamper.stamp(mask, shift)
            conn = batch_post(conn, port=port, body=body, headers=headers, n_spans=n_spans, run=run, lock=lock)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    meter = CpuMeter(web_pids)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    last_time, last_spans = started, 0
    while any(thread.is_alive() for thread in threads):
        threads[0].join(timeout=0.5)
        now = time.perf_counter()
        if now - last_time >= PROGRESS_SECONDS:
            with lock:
                done = run.spans_acked
            overall = done / (now - started)
            eta = (plan.target - done) / overall if overall else float("inf")
            say(
                f"filled {done:,} / {plan.target:,} spans: {rate((done - last_spans) / (now - last_time))} spans/s "
                f"now, {rate(overall)} overall, ETA {eta:,.0f}s"
            )
            last_time, last_spans = now, done
    run.seconds = time.perf_counter() - started
    run.cpu = meter.stop()
    return run


def fill(
    report: Report, creds: Credentials, *, spans: int, workers: int, threads: int, seed: int, command: str
) -> None:
    started = time.perf_counter()
    pool_target = min(spans, POOL_SPANS)
    # The pool's own times are arbitrary (every request is shifted before it is sent): one cycle's worth.
    cycle_ns = int(DAY_NS * pool_target / spans)
    pool_start = time.time_ns() - DAY_NS
    bodies = service_bodies(pool_target, seed=seed, start_ns=pool_start, spread_ns=cycle_ns)
    pool = [(Restamper(body), n) for body, n in bodies]
    pool_spans = sum(n for _r, n in pool)
    pool_bytes = sum(len(body) for body, _n in bodies)
    say(
        f"generated a pool of {len(pool)} requests / {pool_spans:,} spans ({pool_bytes / pool_spans:,.0f} B/span) "
        f"in {time.perf_counter() - started:.1f}s (untimed); sending it {spans / pool_spans:,.1f} times"
    )
    plan = _Plan(pool, target=spans, pool_start_ns=pool_start, cycle_ns=cycle_ns, seed=seed + 1)
    clients = workers * threads
    with Server(creds.url, workers=workers, threads=threads) as server:
        say(f"{server.label}: filling to {spans:,} spans from {clients} client connections")
        result = _send(server.port, creds.ingest_token, plan, clients, server.worker_pids())
    stored = _count(creds, "SELECT count(*) FROM spans")
    committed = "stored = acknowledged" if stored == result.spans_acked else f"STORED {stored:,} (!)"
    failures = ", ".join(f"{status}: {n}" for status, n in sorted(result.failed.items())) or "none"
    per = 10_000 / max(result.spans_acked, 1)
    cpu = ", ".join(f"{name} {seconds * per:.2f}" for name, seconds in result.cpu.items())
    report.add(
        SECTION,
        "fill: OTLP/HTTP ingest of the map store",
        f"{rate(result.spans_acked / result.seconds)} spans/s",
        command=command,
        note=f"{result.spans_acked:,} spans in {result.seconds:,.0f}s, {committed}; {server.label}, {clients} "
        f"clients; 429/503 retried: {result.busy_answers}; failed: {failures}",
    )
    report.add(
        SECTION,
        "  fill request latency p50 / p99",
        f"{percentile(result.latencies, 50) * 1000:.0f} / {percentile(result.latencies, 99) * 1000:.0f} ms",
        command=command,
        note=f"~512-span requests; CPU-s per 10k spans: {cpu} (client = re-stamping + HTTP)",
    )


def _count(creds: Credentials, sql: str, params: list[Any] | None = None) -> int:
    with connect(creds.url) as conn:
        row = conn.execute(sql, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# ---------------------------------------------------------------------------------------------------- catch-up


def catch_up_child() -> dict[str, Any]:
    """In the child process (Django on the map database): drain the rollup pipeline, printing progress."""
    from django.db import connection

    from dashboards import services

    def scalar(sql: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    out: dict[str, Any] = {}
    backlog = scalar("SELECT count(*) FROM dashboards_rollupdelta")
    compacted = drain_phase(
        services.rollups_compact,
        "deltas",
        every=PROGRESS_SECONDS,
        progress=lambda done, seconds: say(
            f"rollups_compact: {done:,} / {backlog:,} deltas merged ({done / seconds:,.0f}/s)"
        ),
    )
    out["compact"] = {"deltas": compacted["done"], "rows": compacted["rows"], "seconds": compacted["seconds"]}
    print(RESULT_PREFIX + json.dumps(out), flush=True)  # so far: kept by the parent if pairing fails
    pending = scalar("SELECT count(*) FROM dashboards_traceedgestate WHERE pending")
    paired = drain_phase(
        lambda: services.edges_rollup(idle_seconds=0),
        "traces",
        every=PROGRESS_SECONDS,
        progress=lambda done, seconds: say(
            f"edges_rollup: {done:,} / {pending:,} traces paired ({done / seconds:,.0f} traces/s)"
        ),
    )
    out["edges_left_pending"] = paired["last"].pending
    out["edges"] = {
        "traces": paired["done"],
        "rows": paired["rows"],
        "calls": paired["calls"],
        "seconds": paired["seconds"],
    }
    return out


def catch_up(report: Report, creds: Credentials, *, command: str) -> bool:
    """Run the catch-up in a child process (this one may have Django set up against another bench database).

    False when it failed: what it reported before that is kept, with a figure saying so.
    """
    proc = subprocess.Popen(
        [PY, "-m", "bench.rollup_reads", "catch-up"],
        cwd=BASE_DIR,
        env=child_env(creds.url),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    result: dict[str, Any] | None = None
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line, end="", flush=True)
    failed = proc.wait() != 0
    if failed:
        report.add(SECTION, "catch-up FAILED", f"exit {proc.returncode}", command=command, note="reads not timed")
    if result is None:
        return False
    spans, traces = _store_totals(creds)
    compact = result["compact"]
    if compact["deltas"]:
        report.add(
            SECTION,
            "catch-up: rollups_compact over the fill's deltas",
            f"{compact['seconds']:,.1f} s",
            command=command,
            note=f"{compact['deltas']:,} deltas ({compact['deltas'] / compact['seconds']:,.0f}/s, "
            f"~{rate(spans / compact['seconds'])} spans/s), {compact['rows']:,} rollup rows written",
        )
    edges = result.get("edges")
    if failed:
        return False
    if edges is None:
        report.add(SECTION, "catch-up: edges_rollup", "n/a", command=command, note="edges_rollup not available")
    elif edges["traces"]:
        per_trace = spans / max(traces, 1)
        report.add(
            SECTION,
            "catch-up: edges_rollup(idle_seconds=0) until none pending",
            f"{edges['seconds']:,.1f} s",
            command=command,
            note=f"{edges['traces']:,} traces in {edges['calls']:,} calls: {rate(edges['traces'] / edges['seconds'])} "
            f"traces/s, ~{rate(edges['traces'] * per_trace / edges['seconds'])} spans/s; "
            f"{edges['rows']:,} edge rollup rows written; {result.get('edges_left_pending', 0):,} left pending",
        )
    if compact["deltas"] or (edges and edges["traces"]):
        total = compact["seconds"] + (edges["seconds"] if edges else 0.0)
        report.add(
            SECTION,
            "catch-up total (rollups + edges)",
            f"{total:,.1f} s",
            command=command,
            note=f"{rate(spans / total)} spans/s over the {spans:,}-span fill, single process",
        )
    else:
        say("rollups were already caught up (reused fill)")
    return True


def _store_totals(creds: Credentials) -> tuple[int, int]:
    with connect(creds.url) as conn:
        row = conn.execute("SELECT coalesce(sum(span_count), 0), count(*) FROM traces").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def sizes(report: Report, creds: Credentials, *, command: str) -> None:
    with connect(creds.url, autocommit=True) as conn:
        spans_row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
            "WHERE inhparent = 'spans'::regclass"
        ).fetchone()
        spans_bytes = int(spans_row[0]) if spans_row else 0
        spans, traces = _store_totals(creds)
        for table in ROLLUP_TABLES:
            exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()
            if not exists or exists[0] is None:
                report.add(SECTION, f"table {table}", "missing", command=command)
                continue
            # What autovacuum would do shortly after a bulk write; the reads then plan with real statistics.
            conn.execute(f"ANALYZE {table}")
            size_row = conn.execute("SELECT pg_total_relation_size(%s)", [table]).fetchone()
            rows_row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            size = int(size_row[0]) if size_row else 0
            rows = int(rows_row[0]) if rows_row else 0
            report.add(
                SECTION,
                f"table {table} (+ indexes)",
                human_bytes(size),
                command=command,
                note=f"{rows:,} rows; {size / max(spans, 1):,.2f} B/span, {100 * size / max(spans_bytes, 1):.2f} % of "
                f"spans' {human_bytes(spans_bytes)} ({spans:,} spans, {traces:,} traces)",
            )


# ---------------------------------------------------------------------------------------------------- reads


def _mark(p99: float) -> str:
    return "✔" if p99 < GOAL_SECONDS else "✘"


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS_PER_S, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def reads(report: Report, creds: Credentials, *, reps: int, threads: int, command: str) -> None:
    newest = _count(creds, "SELECT max(end_ns) FROM traces WHERE project_id = %s", [creds.project_id])
    now = time.time_ns()
    live = newest and now - newest < HOUR_NS
    end = now if live else newest + NS_PER_S
    anchor: dict[str, str] = {} if live else {"end": str(end)}
    if live:
        ago = (now - newest) / NS_PER_S
        say(f"windows end now (the newest span ends {abs(ago):,.1f}s {'ago' if ago >= 0 else 'from now'})")
    else:
        say(f"windows end at the fill's newest span, {_iso(end)} ({(now - end) / HOUR_NS:,.1f} h ago)")
    for hours in (1, 24):
        held = _count(
            creds,
            "SELECT count(*) FROM spans WHERE project_id = %s AND start_ns >= %s AND start_ns < %s",
            [creds.project_id, end - hours * HOUR_NS, end],
        )
        report.add(SECTION, f"spans in the {hours} h window", f"{held:,}", command=command)

    with Server(creds.url, workers=2, threads=threads) as server:
        say(f"read API served by {server.label} on port {server.port}")
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)

        def path(base: str, **params: str) -> str:
            return f"{base}?{urlencode({**params, **anchor})}"

        status, body = http_get(conn, path("/api/v1/service-map/", lookback="24h"), creds.api_token)
        busiest: tuple[str, str] | None = None
        if status == 200:
            edges = orjson.loads(body).get("edges", [])
            services = [e for e in edges if e.get("source") != "clients"] or edges
            if services:
                top = max(services, key=lambda e: e.get("calls", 0))
                busiest = (top["source"], top["target"])
        else:
            say(f"GET /api/v1/service-map/ answered {status}: {body[:200]!r} (backend not there yet?)")
        at = str((end - 12 * HOUR_NS) // NS_PER_S)
        queries: list[tuple[str, str]] = [
            ("services list, lookback=1h", path("/api/v1/services/", lookback="1h")),
            ("services list, lookback=24h", path("/api/v1/services/", lookback="24h")),
            ("service map, lookback=1h", path("/api/v1/service-map/", lookback="1h")),
            ("service map, lookback=24h", path("/api/v1/service-map/", lookback="24h")),
            (
                "service map, lookback=24h + compare_at 12 h ago",
                path("/api/v1/service-map/", lookback="24h", compare_at=at),
            ),
        ]
        if busiest:
            source, target = busiest
            queries.append(
                (
                    f"edge detail {source} -> {target} (busiest), lookback=24h",
                    path("/api/v1/service-map/edge/", source=source, target=target, lookback="24h"),
                )
            )
        for label, url in queries:
            for _ in range(WARM_RUNS):
                status, body = http_get(conn, url, creds.api_token)
            if status != 200:
                report.add(SECTION, label, f"HTTP {status}", command=command, note=body[:120].decode(errors="replace"))
                continue
            times = []
            for _ in range(reps):
                sent = time.perf_counter()
                http_get(conn, url, creds.api_token)
                times.append(time.perf_counter() - sent)
            p50, p99 = percentile(times, 50), percentile(times, 99)
            report.add(
                SECTION,
                label,
                f"p50 {p50 * 1000:,.1f} / p99 {p99 * 1000:,.1f} ms {_mark(p99)}",
                command=command,
                note=f"goal < {GOAL_SECONDS * 1000:.0f} ms; {_describe(body)}; {reps} requests",
            )
        conn.close()


def _describe(body: bytes) -> str:
    data = orjson.loads(body)
    size = f"{len(body) / 1024:,.1f} KB"
    lag = f"lag_seconds {data['lag_seconds']:,.0f}" if isinstance(data.get("lag_seconds"), (int, float)) else ""
    if "nodes" in data:
        calls = sum(int(e.get("calls") or 0) for e in data["edges"])
        return f"{len(data['nodes'])} nodes, {len(data['edges'])} edges, {calls:,} calls, {size}, {lag}"
    if "services" in data:
        requests = sum(int(s.get("requests") or 0) for s in data["services"])
        return f"{len(data['services'])} services, {requests:,} requests, {size}, {lag}"
    if "examples" in data:
        return f"{int(data.get('calls') or 0):,} calls, {len(data['examples'])} examples, {size}"
    return size


# ---------------------------------------------------------------------------------------------------- section


def run(
    report: Report, *, spans: int, reps: int, workers: int, threads: int, reset: bool, seed: int, command: str
) -> None:
    print(f"\n-- map: {command}")
    creds = provision(MAP_DB)
    held = _count(creds, "SELECT count(*) FROM spans")
    if reset or held < spans:
        if held:
            say(f"the map store holds {held:,} spans, {'--reset' if reset else f'fewer than {spans:,}'}: refilling")
            database_drop(MAP_DB)
            creds = provision(MAP_DB)
        fill(report, creds, spans=spans, workers=workers, threads=threads, seed=seed, command=command)
    else:
        say(f"reusing the map store: it holds {held:,} spans (>= {spans:,}; --reset refills it)")
    if not catch_up(report, creds, command=command):
        return
    sizes(report, creds, command=command)
    reads(report, creds, reps=reps, threads=threads, command=command)


def main() -> int:
    """`python -m bench.rollup_reads catch-up` with DATABASE_URL set by the caller (bench.rollup_reads.catch_up)."""
    if sys.argv[1:] != ["catch-up"]:
        print(__doc__)
        return 2
    url = os.environ.get("DATABASE_URL", "")
    if db_name(url) != MAP_DB:
        print(f"refusing to run against {db_name(url)!r}: not {MAP_DB}", file=sys.stderr)
        return 2
    from .common import django_setup

    django_setup(url)
    result = catch_up_child()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
