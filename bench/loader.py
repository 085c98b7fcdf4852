"""Bulk loader: fill the bench span store with N realistic spans spread over the last 7 days, generated in SQL.

    python -m bench load --spans 10000000

Each chunk is one `INSERT ... SELECT` over generate_series with deterministic pseudo-random draws
(hashint8extended of the row number), so PostgreSQL does all the work and the Python side only hands out chunks.
The same statement derives the `traces` summaries and `traces_operation` rows from the spans it just inserted
(data-modifying CTEs), so they are consistent with the spans by construction.

The data mirrors bench/gen.py: 10-span traces (server root in an entry service, 9 children across 10 services x
12 operations, depth 3), lognormal durations, 5% error spans with an exception event, ~10 attributes per span and
30 resources. Spans arrive in time order within each day, as a live store receives them.

Indexes stay in place (the loader measures loading into the real schema). Idempotent-ish: when the store already
holds N spans nothing is loaded; when it holds fewer, only the difference is added (with a fresh seed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from traces import partitions
from traces.ingest.rows import SPAN_COLUMNS, resource_fingerprint

from .catalog import (
    ENTRY_SERVICES,
    ERROR_RATE,
    OPS,
    OPS_PER_SERVICE,
    PODS_PER_SERVICE,
    SERVER_OPS,
    SERVICES,
    TENANTS,
    USER_AGENTS,
    USERS,
    resource_attributes,
)
from .common import STORE_DB, Credentials, Report, connect, human_bytes, provision, rate, say
from .storage import storage_measure, storage_report

SECTION = "load"
CHUNK_TRACES = 25_000  # 250k spans per statement: big enough to amortise, small enough for steady progress
SPANS_PER_TRACE = 10
DAY_NS = 86_400 * 1_000_000_000
WINDOW_DAYS = 7
END_MARGIN_NS = 60 * 1_000_000_000  # traces start >= 60 s before a day ends, so a trace never straddles partitions

_OPS_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS bench_ops (
    op_id int PRIMARY KEY, svc text, opname text, kind smallint, optype int, base_ms float8,
    method text, route text, peer text, addr text, port int, dbsys text, dbname text, dbop text, dbtable text,
    dbquery text, dest text, codefn text, scope text, scope_ver text, errmsg text, exctype text, stack text,
    res_ids bigint[]
)
"""

# h1/h2: per-trace draws; h3/h4/h5: per-span draws, each 64-bit hash sliced into independent uniform fields.
_CHUNK_SQL = f"""
WITH tr AS (
    SELECT t,
           md5(%(salt)s || t::text)::uuid AS trace_id,
           %(lo)s::bigint + ((t - %(t_first)s)::float8 * %(step)s::float8)::bigint AS trace_start,
           (hashint8extended(t, %(seed)s + 1) & 2147483647) %% {USERS} AS user_n,
           ((hashint8extended(t, %(seed)s + 1) >> 32) & 65535) %% {TENANTS} AS tenant_n,
           (hashint8extended(t, %(seed)s + 2) & 1023) %% {len(USER_AGENTS)} AS agent_n
    FROM generate_series(%(t0)s::bigint, %(t1)s::bigint - 1) AS t
),
g AS (
    SELECT tr.*, k,
           hashint8extended(t * 16 + k, %(seed)s) AS span_id,
           CASE WHEN k > 0 THEN hashint8extended(t * 16 + (k - 1) / 3, %(seed)s) END AS parent_span_id,
           hashint8extended(t * 16 + k, %(seed)s + 3) AS h3,
           hashint8extended(t * 16 + k, %(seed)s + 4) AS h4,
           hashint8extended(t * 16 + k, %(seed)s + 5) AS h5
    FROM tr CROSS JOIN generate_series(0, {SPANS_PER_TRACE - 1}) AS k
),
d AS (
    SELECT g.*, o.*,
           g.trace_start + CASE WHEN g.k = 0 THEN 0
                                ELSE g.k * 2000000 + ((g.h4 >> 40) & 1048575) %% 1000000 END AS start_ns,
           greatest(1000, (o.base_ms * 1000000 * CASE WHEN g.k = 0 THEN 2 ELSE 1 END
                    * exp(0.8 * sqrt(-2 * ln(((g.h4 & 1048575) + 1)::float8 / 1048577))
                          * cos(2 * pi() * (((g.h4 >> 20) & 1048575)::float8 / 1048576))))::bigint) AS duration_ns,
           ((g.h3 >> 32) & 65535) < {int(ERROR_RATE * 65536)} AS err,
           'u' || g.user_n AS uid,
           't' || g.tenant_n AS tenant,
           (g.h5 & 1048575) %% 100000 AS item
    FROM g JOIN bench_ops o ON o.op_id = CASE
        WHEN g.k = 0 THEN ((g.h3 & 65535) %% {ENTRY_SERVICES}) * {OPS_PER_SERVICE}
                          + ((g.h3 >> 16) & 65535) %% {SERVER_OPS}
        ELSE ((g.h3 & 65535) %% {len(SERVICES)}) * {OPS_PER_SERVICE} + ((g.h3 >> 16) & 65535) %% {OPS_PER_SERVICE}
    END
),
e AS (
    SELECT d.*,
           CASE WHEN optype IN (0, 1) THEN
               CASE WHEN err THEN CASE WHEN ((h5 >> 20) & 65535) < 16384 THEN 503 ELSE 500 END
                    WHEN ((h5 >> 20) & 65535) < 1311 THEN 404
                    WHEN method = 'POST' THEN 201 ELSE 200 END
           END AS hsc
    FROM d
),
s AS (
    INSERT INTO spans ({", ".join(SPAN_COLUMNS)})
    SELECT %(project)s, start_ns, trace_id, span_id, parent_span_id, duration_ns, svc, opname, kind,
           CASE WHEN err THEN 2 ELSE 0 END, CASE WHEN err THEN errmsg ELSE '' END,
           res_ids[1 + ((h3 >> 48) & 65535) %% {PODS_PER_SERVICE}], scope, scope_ver, '', 257,
           CASE WHEN optype IN (0, 1) THEN method END, CASE WHEN optype = 0 THEN route END, hsc,
           dbsys, dbname, peer, CASE WHEN optype = 4 THEN 'kafka' END, dest, addr,
           CASE optype
             WHEN 0 THEN jsonb_build_object(
               'http.request.method', method, 'http.route', route, 'http.response.status_code', hsc,
               'url.path', replace(route, '{{id}}', item::text), 'url.scheme', 'https', 'server.address', addr,
               'network.protocol.version', '1.1',
               'user_agent.original', (%(agents)s::text[])[1 + agent_n],
               'client.address', '10.' || agent_n || '.' || (user_n %% 256) || '.' || (user_n / 256 %% 256),
               'app.user_id', uid, 'app.tenant', tenant)
             WHEN 1 THEN jsonb_build_object(
               'http.request.method', method, 'http.response.status_code', hsc,
               'url.full', 'http://' || addr || ':' || port || route || '/' || item,
               'server.address', addr, 'server.port', port, 'peer.service', peer,
               'network.protocol.version', '1.1', 'app.user_id', uid, 'app.tenant', tenant)
             WHEN 2 THEN jsonb_build_object(
               'db.system', dbsys, 'db.namespace', dbname, 'db.operation.name', dbop, 'db.collection.name', dbtable,
               'db.query.text', dbquery, 'server.address', addr, 'server.port', port,
               'db.response.returned_rows', ((h5 >> 36) & 1023) %% 50, 'app.user_id', uid, 'app.tenant', tenant)
             WHEN 3 THEN jsonb_build_object(
               'db.system', dbsys, 'db.namespace', dbname, 'db.operation.name', dbop, 'db.collection.name', dbtable,
               'db.query.text', dbquery, 'server.address', addr, 'server.port', port,
               'app.user_id', uid, 'app.tenant', tenant)
             WHEN 4 THEN jsonb_build_object(
               'messaging.system', 'kafka', 'messaging.destination.name', dest, 'messaging.operation.type', 'publish',
               'messaging.message.id', lpad(to_hex(h5), 16, '0'), 'server.address', addr,
               'messaging.message.body.size', 200 + ((h5 >> 36) & 4095) %% 3800,
               'app.user_id', uid, 'app.tenant', tenant)
             ELSE jsonb_build_object(
               'code.function.name', codefn, 'code.file.path', '/app/' || svc || '/domain.py',
               'code.line.number', 100 + op_id, 'app.cache_hit', ((h5 >> 56) & 255) < 179,
               'app.items', 1 + ((h5 >> 48) & 255) %% 19, 'app.user_id', uid, 'app.tenant', tenant)
           END,
           CASE WHEN err THEN jsonb_build_array(jsonb_build_object(
               'time_ns', (start_ns + duration_ns / 2)::text, 'name', 'exception',
               'attributes', jsonb_build_object(
                   'exception.type', exctype, 'exception.message', errmsg, 'exception.stacktrace', stack))) END,
           NULL, 0, 0, 0
    FROM e
    RETURNING trace_id, start_ns, duration_ns, status_code, service_name, name, kind, parent_span_id
),
t_ins AS (
    INSERT INTO traces (project_id, trace_id, start_ns, end_ns, root_service, root_name, span_count, error_count,
                        services, updated_at)
    SELECT %(project)s, trace_id, min(start_ns), max(start_ns + duration_ns),
           coalesce(min(service_name) FILTER (WHERE parent_span_id IS NULL), ''),
           coalesce(min(name) FILTER (WHERE parent_span_id IS NULL), ''),
           count(*), count(*) FILTER (WHERE status_code = 2),
           array_agg(DISTINCT service_name ORDER BY service_name), now()
    FROM s GROUP BY trace_id
    ON CONFLICT (trace_id, project_id) DO NOTHING
    RETURNING 1
),
o_ins AS (
    -- Sorted, so two loader connections upserting the same operations lock them in the same order.
    INSERT INTO traces_operation AS op (project_id, service_name, name, kind, first_seen, last_seen)
    SELECT %(project)s, service_name, name, kind, to_timestamp(min(start_ns) / 1e9), to_timestamp(max(start_ns) / 1e9)
    FROM s GROUP BY service_name, name, kind ORDER BY service_name, name, kind
    ON CONFLICT (project_id, service_name, name, kind) DO UPDATE
       SET first_seen = least(op.first_seen, excluded.first_seen),
           last_seen = greatest(op.last_seen, excluded.last_seen)
    RETURNING 1
)
SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM t_ins), (SELECT count(*) FROM o_ins)
"""


@dataclass(frozen=True)
class Chunk:
    day: dt.date
    index: int  # within the day
    of: int
    t0: int
    t1: int
    t_first: int  # first trace index of the day segment
    lo: int  # segment start (ns)
    step: float  # ns between consecutive trace starts in the segment


def spans_count(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM spans").fetchone()
    return int(row[0]) if row else 0


def _resources_ensure(conn: psycopg.Connection[Any], project_id: int) -> dict[int, list[int]]:
    """The 30 resources, stored exactly as OTLP ingest would store them (same fingerprints): service -> ids."""
    out: dict[int, list[int]] = {}
    with conn.transaction():
        for service in range(len(SERVICES)):
            for pod in range(PODS_PER_SERVICE):
                attrs = resource_attributes(service, pod)
                row = conn.execute(
                    """
                    INSERT INTO traces_resource (project_id, fingerprint, service_name, attributes, schema_url,
                                                 first_seen)
                    VALUES (%s, %s, %s, %s, '', now())
                    ON CONFLICT (project_id, fingerprint) DO UPDATE SET service_name = excluded.service_name
                    RETURNING id
                    """,
                    [project_id, resource_fingerprint(attrs, ""), attrs["service.name"], orjson.dumps(attrs).decode()],
                ).fetchone()
                assert row
                out.setdefault(service, []).append(int(row[0]))
    return out


def _ops_table_fill(conn: psycopg.Connection[Any], resources: dict[int, list[int]]) -> None:
    conn.execute(_OPS_TABLE)
    conn.execute("TRUNCATE bench_ops")
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO bench_ops VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s)",
            [
                [
                    op.id,
                    op.service,
                    op.name,
                    op.kind,
                    op.optype,
                    op.base_ms,
                    op.http_method,
                    op.http_route,
                    op.peer_service,
                    op.server_address,
                    op.server_port,
                    op.db_system,
                    op.db_name,
                    op.db_operation,
                    op.db_table,
                    op.db_query,
                    op.messaging_destination,
                    op.code_function,
                    op.scope[0],
                    op.scope[1],
                    op.error_message,
                    op.exception_type,
                    op.stacktrace,
                    resources[op.service_index],
                ]
                for op in OPS
            ],
        )
    conn.execute("ANALYZE bench_ops")
    conn.commit()


def plan(n_spans: int, *, now_ns: int) -> list[Chunk]:
    """Split n_spans (rounded up to whole traces) over the last 7 days, per UTC day, in chunks.

    Chunks are interleaved across days so concurrent loader connections write different partitions.
    """
    n_traces = -(-n_spans // SPANS_PER_TRACE)
    window_lo = now_ns - WINDOW_DAYS * DAY_NS
    segments = []
    lo = window_lo
    while lo < now_ns:
        day = dt.datetime.fromtimestamp(lo / 1e9, tz=dt.UTC).date()
        hi = min(partitions.day_start_ns(day + dt.timedelta(days=1)), now_ns)
        if hi - lo > 2 * END_MARGIN_NS:
            segments.append((day, lo, hi))
        lo = hi
    total_ns = sum(hi - lo for _d, lo, hi in segments)
    per_day: list[list[Chunk]] = []
    t = 0
    for i, (day, lo, hi) in enumerate(segments):
        share = n_traces - t if i == len(segments) - 1 else round(n_traces * (hi - lo) / total_ns)
        if share <= 0:
            continue
        step = (hi - lo - END_MARGIN_NS) / share
        bounds = list(range(t, t + share, CHUNK_TRACES)) + [t + share]
        chunks = [Chunk(day, j, len(bounds) - 1, bounds[j], bounds[j + 1], t, lo, step) for j in range(len(bounds) - 1)]
        per_day.append(chunks)
        t += share
    out = []
    for j in range(max((len(c) for c in per_day), default=0)):
        out += [chunks[j] for chunks in per_day if j < len(chunks)]
    return out


def run(report: Report, *, spans: int, jobs: int = 2, creds: Credentials | None = None, reset: bool = False) -> int:
    """Load the store up to `spans` spans (after emptying it with reset=True); return the spans it then holds."""
    command = f"python -m bench load --spans {spans}" + (" --reset" if reset else "")
    print(f"\n-- load: {command}")
    creds = creds or provision(STORE_DB)
    if reset:
        with connect(creds.url, autocommit=True) as conn:
            conn.execute("TRUNCATE spans, traces, traces_operation")
        say("emptied the bench store (spans, traces, operations)")
    existing = spans_count(creds.url)
    if existing >= spans:
        say(f"store already holds {existing:,} spans (>= {spans:,}): nothing to load")
        report.add(SECTION, "spans in the bench store", f"{existing:,}", command=command, note="already loaded")
        return existing
    missing = spans - existing
    now_ns = time.time_ns()
    chunks = plan(missing, now_ns=now_ns)
    to_load = sum(c.t1 - c.t0 for c in chunks) * SPANS_PER_TRACE
    salt = f"{existing}:{spans}:"
    seed = int.from_bytes(hashlib.sha1(salt.encode()).digest()[:4], "big") & 0x3FFFFFFF
    say(f"store holds {existing:,} spans; loading {to_load:,} more over {WINDOW_DAYS} days with {jobs} connections")

    with connect(creds.url, autocommit=True) as conn:
        with conn.cursor() as cursor:
            for day in sorted({c.day for c in chunks}):
                # Past days have no partition yet (maintenance only creates today onwards).
                partitions.partition_create(cursor, day)
        conn.autocommit = False
        resources = _resources_ensure(conn, creds.project_id)

    local = threading.local()
    lock = threading.Lock()
    progress = {"spans": 0, "next_million": 1_000_000}
    day_done: dict[dt.date, int] = {}
    day_total = {c.day: c.of for c in chunks}
    day_started: dict[dt.date, float] = {}
    started = time.perf_counter()

    def work(chunk: Chunk) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect(creds.url)
            conn.execute("SET work_mem = '256MB'")  # keeps the per-chunk aggregates in memory
            _ops_table_fill(conn, resources)
        with lock:
            day_started.setdefault(chunk.day, time.perf_counter())
        params = {
            "salt": salt,
            "seed": seed,
            "t0": chunk.t0,
            "t1": chunk.t1,
            "t_first": chunk.t_first,
            "lo": chunk.lo,
            "step": chunk.step,
            "project": creds.project_id,
            "agents": list(USER_AGENTS),
        }
        row = conn.execute(_CHUNK_SQL, params).fetchone()
        conn.commit()
        assert row
        with lock:
            progress["spans"] += int(row[0])
            day_done[chunk.day] = day_done.get(chunk.day, 0) + 1
            elapsed = time.perf_counter() - started
            done = progress["spans"]
            line = f"{done:>11,} / {to_load:,} spans ({done / to_load:4.0%}), {rate(done / elapsed)} spans/s"
            if day_done[chunk.day] == day_total[chunk.day]:
                took = time.perf_counter() - day_started[chunk.day]
                say(f"day {chunk.day} complete ({took:.0f}s); {line}")
            elif done >= progress["next_million"]:
                say(f"{line}, {elapsed:.0f}s")
            while progress["next_million"] <= done:
                progress["next_million"] += 1_000_000

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for _ in pool.map(work, chunks):
            pass
    load_seconds = time.perf_counter() - started
    say("VACUUM ANALYZE (visibility map for index-only scans, planner statistics)")
    started = time.perf_counter()
    with connect(creds.url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) spans")
        conn.execute("VACUUM (ANALYZE) traces")
        conn.execute("ANALYZE traces_operation")
        vacuum_seconds = time.perf_counter() - started
        storage = storage_measure(conn)
    total = storage.spans
    report.add(
        SECTION,
        "bulk load into the indexed schema",
        f"{rate(to_load / load_seconds)} spans/s",
        command=command,
        note=f"{to_load:,} spans in {load_seconds:.0f}s ({load_seconds / 60:.1f} min), {jobs} connections, "
        "all indexes in place, traces + operations derived in the same statements",
    )
    report.add(SECTION, "post-load VACUUM ANALYZE", f"{vacuum_seconds:.0f} s", command=command)
    report.add(
        SECTION,
        "spans in the bench store",
        f"{total:,}",
        command=command,
        note=f"{storage.traces:,} traces, {human_bytes(storage.total)} on disk",
    )
    storage_report(report, SECTION, storage, command=command, what="bulk-loaded store")
    return total
