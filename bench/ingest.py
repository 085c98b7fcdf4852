"""Ingest benchmark: OTLP/HTTP protobuf through gunicorn + Django + PostgreSQL, against the raw-COPY ceiling.

All request bodies are generated and serialized before timing. Concurrent clients are threads with persistent
http.client connections sending the pre-built bodies, so the client costs little CPU (it is measured and shown).
A POST counts only when it got a 2xx; 429/503 answers are retried after 50 ms (as an exporter would, sooner) and
counted. After each run the stored span count is checked against the acknowledged count.

Runs in the `tracing_ui_bench_ingest` database, truncated (spans, traces, traces_operation) before every run, so
every run starts from the same empty state.
"""

from __future__ import annotations

import gzip
import http.client
import json
import pickle
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .common import (
    BASE_DIR,
    INGEST_DB,
    PY,
    CpuMeter,
    Credentials,
    Report,
    Server,
    child_env,
    connect,
    percentile,
    provision,
    rate,
    say,
)
from .gen import ingest_bodies
from .storage import storage_measure, storage_report

COST_REPS = 5  # off/on pairs for the rollup cost
SECTION = "ingest"
BUSY_RETRY_SECONDS = 0.05
MAX_ATTEMPTS = 50


@dataclass
class HttpRun:
    spans_acked: int = 0
    requests_ok: int = 0
    busy_answers: int = 0  # 429 / 503, retried
    failed: dict[int, int] = field(default_factory=dict)  # other statuses (-1: connection error)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    stored: int = -1

    @property
    def spans_per_s(self) -> float:
        return self.spans_acked / self.seconds if self.seconds else 0.0


def truncate(creds: Credentials) -> None:
    with connect(creds.url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE spans, traces, traces_operation, dashboards_rollupdelta, dashboards_spanrollup, "
            "dashboards_edgerollup, dashboards_traceedgestate"
        )


def stored_spans(creds: Credentials) -> int:
    with connect(creds.url) as conn:
        row = conn.execute("SELECT count(*) FROM spans").fetchone()
    return int(row[0]) if row else -1


def batch_post(
    conn: http.client.HTTPConnection,
    *,
    port: int,
    body: bytes,
    headers: dict[str, str],
    n_spans: int,
    run: HttpRun,
    lock: threading.Lock,
) -> http.client.HTTPConnection:
    """POST one OTLP request, retrying 429/503 and dropped connections as an exporter would; record the outcome in
    `run`. Returns the connection to use next (a new one after a network error)."""
    for _attempt in range(MAX_ATTEMPTS):
        sent = time.perf_counter()
        try:
            conn.request("POST", "/v1/traces", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            status = -1
        took = time.perf_counter() - sent
        with lock:
            if 200 <= status < 300:
                run.spans_acked += n_spans
                run.requests_ok += 1
                run.latencies.append(took)
            elif status in (429, 503):
                run.busy_answers += 1
            else:
                run.failed[status] = run.failed.get(status, 0) + 1
        if 200 <= status < 300 or status not in (429, 503, -1):
            break
        time.sleep(BUSY_RETRY_SECONDS)
    return conn


def http_send(
    port: int, token: str, bodies: list[tuple[bytes, int]], *, clients: int, gzipped: bool, web_pids: list[int]
) -> HttpRun:
    """POST every body once from `clients` threads (persistent connections); wall time from a common start."""
    run = HttpRun()
    lock = threading.Lock()
    next_index = 0
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        nonlocal next_index
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.connect()
        barrier.wait()
        while True:
            with lock:
                index = next_index
                next_index += 1
            if index >= len(bodies):
                break
            body, n_spans = bodies[index]
            conn = batch_post(conn, port=port, body=body, headers=headers, n_spans=n_spans, run=run, lock=lock)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    meter = CpuMeter(web_pids)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    run.cpu = meter.stop()
    return run


def _warm(creds: Credentials, server: Server, warm_bodies: list[tuple[bytes, int]], clients: int) -> HttpRun:
    """One request per client connection so every worker thread has its DB connection, caches and imports ready.

    These are the first requests a fresh server gets: their 429/503 count shows cold-start trouble.
    """
    result = http_send(server.port, creds.ingest_token, warm_bodies, clients=clients, gzipped=False, web_pids=[])
    truncate(creds)
    return result


def _cpu_note(run_cpu: dict[str, float], spans: int) -> str:
    per = 10_000 / max(spans, 1)
    parts = [f"{name} {seconds * per:.2f}" for name, seconds in run_cpu.items()]
    return "CPU-s per 10k spans: " + ", ".join(parts)


def _ceiling(creds: Credentials, bodies_file: str, *, clients: int, mode: str) -> dict[str, Any]:
    truncate(creds)
    out = subprocess.run(
        [
            PY,
            "-m",
            "bench.ceiling",
            "--bodies",
            bodies_file,
            "--clients",
            str(clients),
            "--mode",
            mode,
            "--project-id",
            str(creds.project_id),
        ],
        cwd=BASE_DIR,
        env=child_env(creds.url),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["stored"] = stored_spans(creds)
    return result


def transform_rate(bodies: list[tuple[bytes, int]]) -> tuple[float, float, float, int]:
    """Single-core spans/s of protobuf parse alone and of parse + batch_build (validate, redact, rows); the rollup
    delta's Python cost at ingest (aggregate and serialize) in spans/s, and its size in bytes per span."""
    import orjson
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from dashboards.rollups import delta_payload
    from traces.ingest.redaction import Redactor
    from traces.ingest.rows import batch_build

    spans = sum(n for _b, n in bodies)
    started = time.perf_counter()
    for body, _n in bodies:
        ExportTraceServiceRequest.FromString(body)
    parse = time.perf_counter() - started
    started = time.perf_counter()
    built = [
        batch_build(ExportTraceServiceRequest.FromString(body), project_id=1, redactor=Redactor(rules=[])).rows
        for body, _n in bodies
    ]
    build = time.perf_counter() - started
    started = time.perf_counter()
    delta_bytes = sum(len(orjson.dumps(delta_payload(rows))) for rows in built)
    deltas = time.perf_counter() - started
    return spans / parse, spans / build, spans / deltas, delta_bytes


def run(report: Report, *, requests: int, workers: list[int], threads: int, gzip_run: bool, seed: int) -> None:
    command = f"python -m bench ingest --requests {requests} --workers {','.join(map(str, workers))}"
    print(f"\n-- ingest: {command}")
    creds = provision(INGEST_DB)
    max_clients = max(workers) * threads
    started = time.perf_counter()
    generated = ingest_bodies(requests + max_clients, seed=seed, now_ns=time.time_ns())
    bodies, warm_bodies = generated[:requests], generated[requests:]
    gz_bodies = [(gzip.compress(body, 6), n) for body, n in bodies] if gzip_run else []
    spans = sum(n for _b, n in bodies)
    raw_bytes = sum(len(b) for b, _n in bodies)
    say(f"generated {len(bodies)} requests / {spans:,} spans in {time.perf_counter() - started:.1f}s (untimed)")
    report.add(
        SECTION,
        "OTLP protobuf payload size",
        f"{raw_bytes / spans:,.0f} B/span",
        command=command,
        note=f"{len(bodies)} requests x 512 spans, {raw_bytes / len(bodies) / 1024:,.0f} KB/request",
    )
    if gz_bodies:
        gz_bytes = sum(len(b) for b, _n in gz_bodies)
        report.add(
            SECTION,
            "OTLP protobuf gzip-6 payload size",
            f"{gz_bytes / spans:,.0f} B/span",
            command=command,
            note=f"{raw_bytes / gz_bytes:.1f}x smaller",
        )
    parse_rate, build_rate, delta_rate, delta_bytes = transform_rate(bodies)
    report.add(
        SECTION,
        "Python transform, 1 core: parse + batch_build",
        f"{rate(build_rate)} spans/s",
        command=command,
        note=f"protobuf parse alone {rate(parse_rate)} spans/s; default redaction on; in-process, no DB",
    )
    report.add(
        SECTION,
        "rollup delta at ingest, Python, 1 core",
        f"{1e6 / delta_rate:.2f} µs/span",
        command=command,
        note=f"{100 * build_rate / delta_rate:.1f} % of parse + batch_build; {delta_bytes / spans:.0f} B/span written "
        "to the delta row; steadier than the on/off throughput runs below",
    )

    best: tuple[float, int] = (0.0, workers[0])
    cold_busy = 0
    for n_workers in workers:
        clients = n_workers * threads
        truncate(creds)
        with Server(creds.url, workers=n_workers, threads=threads) as server:
            warm = _warm(creds, server, warm_bodies[:clients], clients)
            cold_busy += warm.busy_answers
            say(f"{server.label}: sending {len(bodies)} requests from {clients} client connections")
            result = http_send(
                server.port, creds.ingest_token, bodies, clients=clients, gzipped=False, web_pids=server.worker_pids()
            )
        result.stored = stored_spans(creds)
        _report_http(report, command, f"{n_workers} workers x {threads} threads, {clients} clients", result)
        if result.spans_per_s > best[0]:
            best = (result.spans_per_s, n_workers)

    report.add(
        SECTION,
        "cold start: 429/503 on the first request per connection",
        str(cold_busy),
        command=command,
        note="first requests of fresh workers (cold resource cache), retried; non-zero = startup contention",
    )
    best_rate, best_workers = best
    clients = best_workers * threads
    report.add(
        SECTION,
        "END-TO-END best (2xx, committed)",
        f"{rate(best_rate)} spans/s",
        command=command,
        note=f"gunicorn --workers {best_workers} --threads {threads} -k gthread, {clients} client connections",
    )

    if gz_bodies:
        truncate(creds)
        with Server(creds.url, workers=best_workers, threads=threads) as server:
            _warm(creds, server, warm_bodies[:clients], clients)
            say(f"{server.label}: gzip bodies")
            result = http_send(
                server.port, creds.ingest_token, gz_bodies, clients=clients, gzipped=True, web_pids=server.worker_pids()
            )
        result.stored = stored_spans(creds)
        _report_http(report, command, f"gzip bodies, {best_workers} workers, {clients} clients", result)

    # Rollups off vs on in the best configuration, alternated and repeated: one 8-second run on a shared 2-core
    # machine swings by 20 %, so each mode's median prices rollups (issue goal: under 15 % of throughput).
    modes: dict[str, list[HttpRun]] = {"off": [], "on": []}
    for rep in range(COST_REPS):
        for mode in ("off", "on"):
            truncate(creds)
            env = {"ROLLUPS_ENABLED": "0"} if mode == "off" else {}
            with Server(creds.url, workers=best_workers, threads=threads, env=env) as server:
                _warm(creds, server, warm_bodies[:clients], clients)
                say(f"{server.label}: rollups {mode} ({rep + 1}/{COST_REPS})")
                result = http_send(
                    server.port,
                    creds.ingest_token,
                    bodies,
                    clients=clients,
                    gzipped=False,
                    web_pids=server.worker_pids(),
                )
            result.stored = stored_spans(creds)
            modes[mode].append(result)
    median = {mode: sorted(runs, key=lambda r: r.spans_per_s)[len(runs) // 2] for mode, runs in modes.items()}
    for mode in ("off", "on"):
        _report_http(
            report, command, f"rollups {mode.upper()}, median of {COST_REPS}, {best_workers} workers", median[mode]
        )
        report.add(
            SECTION,
            "  every run",
            ", ".join(rate(r.spans_per_s) for r in modes[mode]) + " spans/s",
            command=command,
            note="in the order run, alternating with the other mode",
        )
    off = median["off"]
    report.add(
        SECTION,
        "rollup cost: throughput lost with rollups on",
        f"{100 * (1 - median['on'].spans_per_s / off.spans_per_s):.1f} %",
        command=command,
        note=f"median on {rate(median['on'].spans_per_s)} vs off {rate(off.spans_per_s)} spans/s; deltas written "
        "at ingest, compaction and pairing not running",
    )

    # Rollups on with their background half running alongside: compaction and edge pairing on the same 2 cores.
    truncate(creds)
    with Server(creds.url, workers=best_workers, threads=threads) as server:
        _warm(creds, server, warm_bodies[:clients], clients)
        say(f"{server.label}: rollups on, compactor and edge pairing running alongside")
        with subprocess.Popen(
            [PY, "-m", "bench.compactor"], cwd=BASE_DIR, env=child_env(creds.url), start_new_session=True
        ) as compactor:
            full = http_send(
                server.port, creds.ingest_token, bodies, clients=clients, gzipped=False, web_pids=server.worker_pids()
            )
            compactor.send_signal(signal.SIGTERM)
            compactor.wait(timeout=120)
    full.stored = stored_spans(creds)
    with connect(creds.url) as conn:
        backlog = conn.execute(
            "SELECT (SELECT count(*) FROM dashboards_rollupdelta), "
            "(SELECT count(*) FILTER (WHERE pending) FROM dashboards_traceedgestate), "
            "(SELECT count(*) FROM dashboards_traceedgestate)"
        ).fetchone()
    _report_http(report, command, f"rollups ON + compactor, {best_workers} workers, {clients} clients", full)
    if backlog:
        report.add(
            SECTION,
            "rollup backlog when the ingest run ended",
            f"{backlog[0]:,} deltas, {backlog[1]:,} traces",
            command=command,
            note=f"not yet merged / not yet paired; {backlog[2] - backlog[1]:,} traces were paired during the run",
        )
    report.add(
        SECTION,
        "rollup cost incl. compaction and edge pairing",
        f"{100 * (1 - full.spans_per_s / off.spans_per_s):.1f} %",
        command=command,
        note=f"on+compactor {rate(full.spans_per_s)} vs off {rate(off.spans_per_s)} spans/s (EDGE_IDLE_SECONDS=0)",
    )

    # The background half on its own: ingest the run with rollups on, then work off its backlog phase by phase.
    # These are the sizing figures: CPU per span of compaction and of edge pairing, and what one worker sustains.
    truncate(creds)
    with Server(creds.url, workers=best_workers, threads=threads) as server:
        _warm(creds, server, warm_bodies[:clients], clients)
        say(f"{server.label}: rollups on, then the backlog worked off by one process")
        http_send(server.port, creds.ingest_token, bodies, clients=clients, gzipped=False, web_pids=[])
    spans = stored_spans(creds)
    drained = json.loads(
        subprocess.run(
            [PY, "-m", "bench.compactor", "--drain"],
            cwd=BASE_DIR,
            env=child_env(creds.url),
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    for name, what, unit in (
        ("compaction", "rollup compaction catch-up, one process", "deltas"),
        ("pairing", "edge pairing catch-up, one process", "traces"),
    ):
        figures = drained[name]
        seconds = max(figures["seconds"], 1e-9)
        report.add(
            SECTION,
            what,
            f"{rate(spans / seconds)} spans/s",
            command=command,
            note=f"{figures['done']:,} {unit} in {seconds:.1f}s; "
            + _cpu_note({"worker": figures["worker_cpu"], "postgres": figures["postgres_cpu"]}, spans),
        )

    with connect(creds.url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE spans")  # visibility map / FSM as a settled store would have them
        storage_report(report, SECTION, storage_measure(conn), command=command, what="after the HTTP ingest run")

    with tempfile.NamedTemporaryFile(prefix="bench-bodies-", suffix=".pickle") as fh:
        pickle.dump(bodies, fh)
        fh.flush()
        ceilings = {}
        for mode, label in (
            ("copy", "CEILING raw psycopg COPY (spans only)"),
            ("service", "DB path: services.span_batch_store, no HTTP"),
        ):
            say(f"{label}: {clients} processes")
            ceiling = _ceiling(creds, fh.name, clients=clients, mode=mode)
            spans_per_s = ceiling["spans"] / ceiling["seconds"]
            ceilings[mode] = spans_per_s
            check = "stored = written" if ceiling["stored"] == ceiling["spans"] else f"STORED {ceiling['stored']:,}"
            if ceiling.get("busy_retries"):
                check += f", {ceiling['busy_retries']} StoreBusy retries"
            report.add(
                SECTION,
                label,
                f"{rate(spans_per_s)} spans/s",
                command=command,
                note=f"{clients} processes, 1 txn per 512-span batch, {ceiling['spans']:,} spans in "
                f"{ceiling['seconds']:.1f}s, {check}; "
                + _cpu_note({"writers": ceiling["writer_cpu"], "postgres": ceiling["postgres_cpu"]}, ceiling["spans"]),
            )
    report.add(
        SECTION,
        "RATIO end-to-end / raw COPY ceiling",
        f"{best_rate / ceilings['copy']:.2f}",
        command=command,
        note=f"end-to-end / span_batch_store path: {best_rate / ceilings['service']:.2f}",
    )
    truncate(creds)


def _report_http(report: Report, command: str, what: str, result: HttpRun) -> None:
    committed = "stored = acknowledged" if result.stored == result.spans_acked else f"STORED {result.stored:,} (!)"
    # -1 is a dropped connection (retried); any other status is a real failure (not retried).
    failures = ", ".join(f"{status}: {n}" for status, n in sorted(result.failed.items())) or "none"
    report.add(
        SECTION,
        f"end-to-end OTLP/HTTP ({what})",
        f"{rate(result.spans_per_s)} spans/s",
        command=command,
        note=f"{result.spans_acked:,} spans acked in {result.seconds:.1f}s, {committed}; "
        f"429/503 retried: {result.busy_answers}; failed: {failures}",
    )
    report.add(
        SECTION,
        "  request latency p50 / p99",
        f"{percentile(result.latencies, 50) * 1000:.0f} / {percentile(result.latencies, 99) * 1000:.0f} ms",
        command=command,
        note=_cpu_note(result.cpu, result.spans_acked),
    )
