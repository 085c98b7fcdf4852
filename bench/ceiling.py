"""The ingest ceiling: the same 512-span batches written without HTTP, from N concurrent processes.

    python -m bench.ceiling --bodies FILE --clients N --mode copy|service   (DATABASE_URL = a bench database)

Run as a subprocess by bench.ingest, because it sets Django up against the ingest bench database.

- `copy`: raw psycopg `COPY spans ... FROM STDIN` of rows built by traces.ingest.rows.batch_build (resource ids
  resolved beforehand), one transaction per batch. Nothing else: the bare cost of getting rows into the indexed table.
- `service`: traces.services.span_batch_store per batch (admission slot, resources, COPY, traces and operations
  upserts): the app's whole DB path without HTTP, Django request handling and protobuf parsing.

Rows are built in each process before a common start barrier; only the writes are timed. Prints one JSON line.
`--cold` (service mode) starts the writers without traces.services' resource-id cache, as freshly started web
workers do: concurrent first batches then upsert the same resources in different orders and deadlock.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import queue
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier, Event
from typing import Any

from bench.common import BENCH_DBS, CpuMeter, db_name

# Inherited by the forked writers (no pickling of the bodies per process).
_BODIES: list[tuple[bytes, int]] = []
_RESOURCE_IDS: dict[bytes, int] = {}

_RESOURCE_UPSERT = """
INSERT INTO traces_resource (project_id, fingerprint, service_name, attributes, schema_url, first_seen)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (project_id, fingerprint) DO UPDATE SET service_name = excluded.service_name
RETURNING id
"""


def _batches(indices: list[int], project_id: int) -> list[Any]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from traces.ingest.redaction import Redactor
    from traces.ingest.rows import batch_build

    out = []
    for i in indices:
        request = ExportTraceServiceRequest.FromString(_BODIES[i][0])
        # The project's default redaction, as the HTTP path applies (it changes nothing in these spans).
        out.append(batch_build(request, project_id=project_id, redactor=Redactor(rules=[])))
    return out


def _writer(
    url: str, mode: str, project_id: int, indices: list[int], barrier: Barrier, sampled: Event, results: Any
) -> None:
    batches = _batches(indices, project_id)
    spans = busy = 0
    close: Callable[[], None]
    if mode == "copy":
        import psycopg

        from traces.ingest.rows import COL_RESOURCE, SPAN_COLUMNS

        copy_sql = f"COPY spans ({', '.join(SPAN_COLUMNS)}) FROM STDIN"
        for batch in batches:
            ids = [_RESOURCE_IDS[info.fingerprint] for info in batch.resources]
            for row in batch.rows:
                row[COL_RESOURCE] = ids[row[COL_RESOURCE]]
        conn = psycopg.connect(url)
        barrier.wait(timeout=600)
        cpu0 = time.process_time()
        with conn.cursor() as cursor:
            for batch in batches:
                with conn.transaction(), cursor.copy(copy_sql) as copy:
                    for row in batch.rows:
                        copy.write_row(row)
                spans += len(batch.rows)
        close = conn.close
    else:
        from django.db import connection

        from traces.services import StoreBusy, span_batch_store

        connection.ensure_connection()
        barrier.wait(timeout=600)
        cpu0 = time.process_time()
        for batch in batches:
            for _attempt in range(50):
                try:
                    spans += span_batch_store(project_id=project_id, batch=batch).stored
                    break
                except StoreBusy:
                    # What the HTTP client sees as 429/503: retry the same batch, as an exporter would.
                    busy += 1
                    time.sleep(0.05)
        close = connection.close
    results.put({"spans": spans, "cpu": time.process_time() - cpu0, "busy": busy})
    # Keep the connection (so its backend, and the CPU it used) alive until the parent has sampled CPU.
    sampled.wait(timeout=600)
    close()


def _resources_resolve(project_id: int, *, cold: bool) -> None:
    # Resolve every resource once, exactly as the service's upsert does: the COPY writers need the ids, and the
    # service writers start with them in traces.services' per-process cache, like warmed-up web workers.
    import orjson
    from django.db import connection
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from traces import services
    from traces.ingest.rows import batch_build

    with connection.cursor() as cursor:
        for body, _n in _BODIES:
            batch = batch_build(ExportTraceServiceRequest.FromString(body), project_id=project_id)
            for info in batch.resources:
                if info.fingerprint not in _RESOURCE_IDS:
                    cursor.execute(
                        _RESOURCE_UPSERT,
                        [
                            project_id,
                            info.fingerprint,
                            info.service_name,
                            orjson.dumps(info.attributes).decode(),
                            info.schema_url,
                        ],
                    )
                    _RESOURCE_IDS[info.fingerprint] = cursor.fetchone()[0]
    cache = getattr(services, "_resource_ids", None)
    if isinstance(cache, dict) and not cold:
        cache.update({(project_id, fp): resource_id for fp, resource_id in _RESOURCE_IDS.items()})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--mode", choices=["copy", "service"], required=True)
    parser.add_argument("--project-id", type=int, required=True)
    parser.add_argument(
        "--cold", action="store_true", help="service mode: start with empty resource caches (like fresh web workers)"
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if db_name(url) not in BENCH_DBS:
        print(f"refusing to write to {db_name(url)!r}: not a bench database", file=sys.stderr)
        return 2
    import django

    django.setup()
    from django.db import connections

    with open(args.bodies, "rb") as fh:
        _BODIES.extend(pickle.load(fh))
    _resources_resolve(args.project_id, cold=args.cold)
    connections.close_all()  # every writer opens its own connection after the fork

    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(args.clients + 1)
    sampled = ctx.Event()
    results = ctx.Queue()
    shares = [list(range(i, len(_BODIES), args.clients)) for i in range(args.clients)]
    procs = [
        ctx.Process(target=_writer, args=(url, args.mode, args.project_id, share, barrier, sampled, results))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=600)
    meter = CpuMeter([])
    started = time.perf_counter()
    outcomes: list[dict[str, Any]] = []
    while len(outcomes) < len(procs):
        try:
            outcomes.append(results.get(timeout=1))
        except queue.Empty:
            if all(proc.exitcode is not None for proc in procs):
                break  # a writer died without reporting
    elapsed = time.perf_counter() - started
    cpu = meter.stop()
    sampled.set()
    for proc in procs:
        proc.join()
    print(
        json.dumps(
            {
                "spans": sum(o["spans"] for o in outcomes),
                "seconds": elapsed,
                "writer_cpu": sum(o["cpu"] for o in outcomes),
                "postgres_cpu": cpu["postgres"],
                "failed_writers": sum(1 for proc in procs if proc.exitcode != 0),
                "busy_retries": sum(o.get("busy", 0) for o in outcomes),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
