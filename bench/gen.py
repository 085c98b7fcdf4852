"""Synthetic OTLP `ExportTraceServiceRequest`s: collector-style 512-span batches of 10-span traces, and big trees.

Everything is generated before any timing starts. Spans look like real instrumentation output: ~10 semantic-
convention attributes (http.route, http.response.status_code, db.system, ...), 8 resource attributes, 5% error spans
with an `exception` event carrying a stack trace.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from .catalog import (
    ENTRY_SERVICES,
    ERROR_RATE,
    OP_CLIENT,
    OP_DB_REDIS,
    OP_DB_SQL,
    OP_INTERNAL,
    OP_PRODUCER,
    OP_SERVER,
    OPS,
    OPS_PER_SERVICE,
    PODS_PER_SERVICE,
    SERVER_OPS,
    SERVICES,
    TENANTS,
    USER_AGENTS,
    USERS,
    Op,
    resource_attributes,
    url_path,
)

BATCH_SPANS = 512  # the OTel SDK BatchSpanProcessor's maxExportBatchSize
MS = 1_000_000


def key_values(attrs: dict[str, Any]) -> list[KeyValue]:
    out = []
    for key, value in attrs.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=any_value))
    return out


_RESOURCE_KVS = {
    (service, pod): key_values(resource_attributes(service, pod))
    for service in range(len(SERVICES))
    for pod in range(PODS_PER_SERVICE)
}


@dataclass
class SpanSpec:
    op: Op
    pod: int
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, Any]


def http_status(op: Op, error: bool, rng: random.Random) -> int:
    if error:
        return 503 if rng.random() < 0.25 else 500
    if rng.random() < 0.02:
        return 404
    return 201 if op.http_method == "POST" else 200


def span_attributes(op: Op, *, error: bool, user: int, tenant: int, agent: int, rng: random.Random) -> dict[str, Any]:
    """The attributes a span of `op` carries (keys mirror the SQL loader's)."""
    who = {"app.user_id": f"u{user}", "app.tenant": f"t{tenant}"}
    if op.optype == OP_SERVER:
        assert op.http_route is not None
        return {
            "http.request.method": op.http_method,
            "http.route": op.http_route,
            "http.response.status_code": http_status(op, error, rng),
            "url.path": url_path(op.http_route, rng.randrange(100_000)),
            "url.scheme": "https",
            "server.address": op.server_address,
            "network.protocol.version": "1.1",
            "user_agent.original": USER_AGENTS[agent],
            "client.address": f"10.{agent}.{user % 256}.{user // 256 % 256}",
            **who,
        }
    if op.optype == OP_CLIENT:
        return {
            "http.request.method": op.http_method,
            "http.response.status_code": http_status(op, error, rng),
            "url.full": f"http://{op.server_address}:{op.server_port}{op.http_route}/{rng.randrange(100_000)}",
            "server.address": op.server_address,
            "server.port": op.server_port,
            "peer.service": op.peer_service,
            "network.protocol.version": "1.1",
            **who,
        }
    if op.optype in (OP_DB_SQL, OP_DB_REDIS):
        attrs: dict[str, Any] = {
            "db.system": op.db_system,
            "db.namespace": op.db_name,
            "db.operation.name": op.db_operation,
            "db.collection.name": op.db_table,
            "db.query.text": op.db_query,
            "server.address": op.server_address,
            "server.port": op.server_port,
        }
        if op.optype == OP_DB_SQL:
            attrs["db.response.returned_rows"] = rng.randrange(50)
        return {**attrs, **who}
    if op.optype == OP_PRODUCER:
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": op.messaging_destination,
            "messaging.operation.type": "publish",
            "messaging.message.id": f"{rng.getrandbits(64):016x}",
            "server.address": op.server_address,
            "messaging.message.body.size": rng.randrange(200, 4000),
            **who,
        }
    assert op.optype == OP_INTERNAL
    return {
        "code.function.name": op.code_function,
        "code.file.path": f"/app/{op.service}/domain.py",
        "code.line.number": 100 + op.id,
        "app.cache_hit": rng.random() < 0.7,
        "app.items": rng.randrange(1, 20),
        **who,
    }


def _lognormal(rng: random.Random, base_ms: float) -> int:
    return max(1000, int(base_ms * MS * rng.lognormvariate(0.0, 0.8)))


def small_traces(rng: random.Random, count: int, *, start_ns: int, spread_ns: int) -> Iterator[list[SpanSpec]]:
    """10-span traces: a server root in an entry service and 9 children over random services (depth 3).

    Same shape as the SQL loader: child k hangs under span (k-1)//3 and starts k*2 ms after the root.
    """
    for _ in range(count):
        trace_id = rng.randbytes(16)
        trace_start = start_ns + rng.randrange(spread_ns)
        user, tenant, agent = rng.randrange(USERS), rng.randrange(TENANTS), rng.randrange(len(USER_AGENTS))
        span_ids = [rng.randbytes(8) for _ in range(10)]
        spans = []
        for k in range(10):
            if k == 0:
                op = OPS[rng.randrange(ENTRY_SERVICES) * OPS_PER_SERVICE + rng.randrange(SERVER_OPS)]
                start, duration = trace_start, 2 * _lognormal(rng, op.base_ms)
            else:
                op = OPS[rng.randrange(len(OPS))]
                start, duration = trace_start + k * 2 * MS + rng.randrange(MS), _lognormal(rng, op.base_ms)
            error = rng.random() < ERROR_RATE
            spans.append(
                SpanSpec(
                    op=op,
                    pod=rng.randrange(PODS_PER_SERVICE),
                    trace_id=trace_id,
                    span_id=span_ids[k],
                    parent_id=span_ids[(k - 1) // 3] if k else b"",
                    start_ns=start,
                    end_ns=start + duration,
                    error=error,
                    attributes=span_attributes(op, error=error, user=user, tenant=tenant, agent=agent, rng=rng),
                )
            )
        yield spans


def tree_trace(rng: random.Random, n_spans: int, *, depth: int, trace_id: bytes, start_ns: int) -> list[SpanSpec]:
    """One trace of `n_spans` spans shaped like a real request tree: fan-out at every level, `depth` levels.

    Each new span hangs under a random existing span that is not at the deepest level, so early spans collect
    many children (high fan-out near the root) and the tree fills down to `depth`. A child stays in its parent's
    service 60% of the time (local work, DB calls); otherwise it is a server span of another service (an RPC).
    """
    total_ns = {100: 800, 10_000: 30_000, 100_000: 120_000}.get(n_spans, max(500, n_spans // 2)) * MS
    user, tenant, agent = rng.randrange(USERS), rng.randrange(TENANTS), rng.randrange(len(USER_AGENTS))
    root_op = OPS[SERVER_OPS - 1]
    spans = [
        SpanSpec(
            root_op,
            0,
            trace_id,
            rng.randbytes(8),
            b"",
            start_ns,
            start_ns + total_ns,
            False,
            span_attributes(root_op, error=False, user=user, tenant=tenant, agent=agent, rng=rng),
        )
    ]
    depths = [0]
    eligible = [0]  # spans that may still get children
    for _ in range(n_spans - 1):
        parent_index = eligible[rng.randrange(len(eligible))]
        parent = spans[parent_index]
        if rng.random() < 0.6:
            local_op = SERVER_OPS + rng.randrange(OPS_PER_SERVICE - SERVER_OPS)  # client, DB, producer, internal
            op = OPS[parent.op.service_index * OPS_PER_SERVICE + local_op]
        else:
            op = OPS[rng.randrange(len(SERVICES)) * OPS_PER_SERVICE + rng.randrange(SERVER_OPS)]
        parent_ns = parent.end_ns - parent.start_ns
        start = parent.start_ns + int(rng.random() * 0.6 * parent_ns)
        end = min(parent.end_ns, start + max(1000, int(parent_ns * rng.uniform(0.02, 0.4))))
        error = rng.random() < ERROR_RATE
        spans.append(
            SpanSpec(
                op,
                rng.randrange(PODS_PER_SERVICE),
                trace_id,
                rng.randbytes(8),
                parent.span_id,
                start,
                end,
                error,
                span_attributes(op, error=error, user=user, tenant=tenant, agent=agent, rng=rng),
            )
        )
        depths.append(depths[parent_index] + 1)
        if depths[-1] < depth - 1:
            eligible.append(len(spans) - 1)
    return spans


def request_build(specs: list[SpanSpec]) -> ExportTraceServiceRequest:
    """One request, spans grouped by resource and instrumentation scope (as a collector batch is)."""
    groups: dict[tuple[int, int], dict[tuple[str, str], list[SpanSpec]]] = {}
    for spec in specs:
        groups.setdefault((spec.op.service_index, spec.pod), {}).setdefault(spec.op.scope, []).append(spec)
    request = ExportTraceServiceRequest()
    for resource_key, scopes in groups.items():
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(_RESOURCE_KVS[resource_key])
        for (scope_name, scope_version), scope_specs in scopes.items():
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = scope_name
            scope_spans.scope.version = scope_version
            for spec in scope_specs:
                span = scope_spans.spans.add(
                    trace_id=spec.trace_id,
                    span_id=spec.span_id,
                    parent_span_id=spec.parent_id,
                    name=spec.op.name,
                    kind=spec.op.kind,  # type: ignore[arg-type]
                    start_time_unix_nano=spec.start_ns,
                    end_time_unix_nano=spec.end_ns,
                    attributes=key_values(spec.attributes),
                    flags=0x101,  # sampled, parent is remote-aware
                )
                if spec.error:
                    span.status.code = Status.STATUS_CODE_ERROR
                    span.status.message = spec.op.error_message
                    span.events.append(
                        Span.Event(
                            time_unix_nano=spec.start_ns + (spec.end_ns - spec.start_ns) // 2,
                            name="exception",
                            attributes=key_values(
                                {
                                    "exception.type": spec.op.exception_type,
                                    "exception.message": spec.op.error_message,
                                    "exception.stacktrace": spec.op.stacktrace,
                                }
                            ),
                        )
                    )
    return request


def batches(
    spans: Iterator[list[SpanSpec]] | list[list[SpanSpec]], size: int = BATCH_SPANS
) -> Iterator[list[SpanSpec]]:
    """Cut a stream of traces into `size`-span batches (a trace may straddle two batches, as with a collector)."""
    pending: list[SpanSpec] = []
    for trace in spans:
        pending.extend(trace)
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


def ingest_bodies(n_requests: int, *, seed: int, now_ns: int) -> list[tuple[bytes, int]]:
    """`n_requests` serialized requests (body, span count) of 512 spans, of traces started in the last 10 minutes."""
    rng = random.Random(seed)
    n_traces = -(-n_requests * BATCH_SPANS // 10)
    generated = small_traces(rng, n_traces, start_ns=now_ns - 600 * 1_000_000_000, spread_ns=590 * 1_000_000_000)
    # Exporters send spans as they end, so one batch covers seconds, not the whole ten minutes.
    traces = iter(sorted(generated, key=lambda trace: min(span.start_ns for span in trace)))
    out: list[tuple[bytes, int]] = []
    for batch in batches(traces):
        if len(out) == n_requests:
            break
        out.append((request_build(batch).SerializeToString(), len(batch)))
    return out
