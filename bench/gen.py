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
        client = {
            "http.request.method": op.http_method,
            "http.response.status_code": http_status(op, error, rng),
            "url.full": f"http://{op.server_address}:{op.server_port}{op.http_route}/{rng.randrange(100_000)}",
            "server.address": op.server_address,
            "server.port": op.server_port,
            "peer.service": op.peer_service,
            "network.protocol.version": "1.1",
            **who,
        }
        if op.peer_service is None:  # a call to something uninstrumented, named only by its address
            del client["peer.service"]
        return client
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


# ---------------------------------------------------------------------------------------------------- service map

# Calls go "down the stack" (to a peer with a higher index): frontend -> checkout, payments; api-gateway -> cart,
# users; checkout -> catalog, inventory; ... A peer with a lower index is called rarely (a cycle on the map).
CALL_PROBABILITY = (0.6, 0.4, 0.25)  # per allowed peer, by call depth; no calls deeper than that
BACK_CALL_PROBABILITY = 0.03
PRODUCERS = {"checkout", "payments", "shipping"}
CONSUMED_TOPICS = {"checkout.events", "payments.events"}  # consumed by notifications in the same trace
_NOTIFICATIONS = next(i for i, (name, _n, _l) in enumerate(SERVICES) if name == "notifications")
_PAYMENTS = next(i for i, (name, _n, _l) in enumerate(SERVICES) if name == "payments")
CONSUMER = 5  # OTLP SpanKind CONSUMER

# Operations that exist only in these traces (the SQL loader does not know them): a Kafka consumer per consumed
# topic in notifications, and payments' call to an uninstrumented card processor (no peer.service: the map names
# the callee by server.address, an "external" node).
_CONSUMER_OPS = {
    topic: Op(
        1000 + k,
        _NOTIFICATIONS,
        "notifications",
        f"{topic} process",
        CONSUMER,
        OP_PRODUCER,
        4.0,
        server_address="kafka-0.shop.svc.cluster.local",
        server_port=9092,
        messaging_destination=topic,
    )
    for k, topic in enumerate(sorted(CONSUMED_TOPICS))
}
_EXTERNAL_OP = Op(
    1100,
    _PAYMENTS,
    "payments",
    "POST",
    3,  # CLIENT
    OP_CLIENT,
    120.0,
    http_method="POST",
    http_route="/v1/charges",
    server_address="api.cardprocessor.example",
    server_port=443,
)


def _call_peers(service_index: int) -> list[tuple[Op, int]]:
    """The service's two HTTP client operations (catalog order) and the service each calls (its peer.service)."""
    names = [name for name, _noun, _lang in SERVICES]
    out = []
    for local in (SERVER_OPS, SERVER_OPS + 1):
        op = OPS[service_index * OPS_PER_SERVICE + local]
        assert op.peer_service is not None
        out.append((op, names.index(op.peer_service)))
    return out


_PEERS = [_call_peers(index) for index in range(len(SERVICES))]


class _TraceBuilder:
    """One trace of cross-service calls, built bottom-up so every parent's span encloses its children's."""

    def __init__(self, rng: random.Random, trace_id: bytes) -> None:
        self.rng = rng
        self.trace_id = trace_id
        self.spans: list[SpanSpec] = []
        self.user, self.tenant = rng.randrange(USERS), rng.randrange(TENANTS)
        self.agent = rng.randrange(len(USER_AGENTS))

    def add(self, op: Op, span_id: bytes, parent_id: bytes, start: int, end: int, error: bool) -> None:
        attrs = span_attributes(op, error=error, user=self.user, tenant=self.tenant, agent=self.agent, rng=self.rng)
        if op.kind == CONSUMER:
            attrs["messaging.operation.type"] = "process"
        self.spans.append(
            SpanSpec(
                op, self.rng.randrange(PODS_PER_SERVICE), self.trace_id, span_id, parent_id, start, end, error, attrs
            )
        )

    def leaf(self, op: Op, parent_id: bytes, start: int, error_rate: float = 0.01) -> int:
        end = start + _lognormal(self.rng, op.base_ms)
        self.add(op, self.rng.randbytes(8), parent_id, start, end, self.rng.random() < error_rate)
        return end

    def serve(self, op: Op, parent_id: bytes, start: int, depth: int) -> tuple[int, bool]:
        """A SERVER (or CONSUMER) span of `op` and its work: local spans, DB and cache calls, calls to peers."""
        rng = self.rng
        span_id = rng.randbytes(8)
        service = op.service_index
        base = service * OPS_PER_SERVICE
        t = start + rng.randrange(100_000, 600_000)
        failed = False
        if rng.random() < 0.5:
            t = self.leaf(OPS[base + 11], span_id, t)  # internal
        if rng.random() < 0.6:
            t = self.leaf(OPS[base + 8], span_id, t)  # SQL
        if rng.random() < 0.4:
            t = self.leaf(OPS[base + 9], span_id, t)  # redis
        if depth < len(CALL_PROBABILITY):
            for client_op, peer in _PEERS[service]:
                chance = CALL_PROBABILITY[depth] if peer > service else BACK_CALL_PROBABILITY
                if rng.random() < chance:
                    t, error = self.call(client_op, peer, span_id, t, depth)
                    failed = failed or error
        if op.service == "payments" and rng.random() < 0.5:
            t = self.leaf(_EXTERNAL_OP, span_id, t, error_rate=0.02)
        if op.service in PRODUCERS and rng.random() < 0.3:
            producer = OPS[base + 10]
            end = self.leaf(producer, span_id, t)
            topic = producer.messaging_destination or ""
            if topic in CONSUMED_TOPICS:
                # The consumer starts after the publish; it is part of this trace (a child of the producer span).
                self.serve(_CONSUMER_OPS[topic], self.spans[-1].span_id, end + rng.randrange(MS, 20 * MS), depth + 9)
            t = end
        end = t + _lognormal(rng, op.base_ms / 4)
        error = rng.random() < 0.02 or (failed and rng.random() < 0.5)
        self.add(op, span_id, parent_id, start, end, error)
        return end, error

    def call(self, client_op: Op, peer: int, parent_id: bytes, start: int, depth: int) -> tuple[int, bool]:
        """A CLIENT span and, as its child, the SERVER span of a route of the peer service (a paired call)."""
        rng = self.rng
        client_id = rng.randbytes(8)
        server_op = OPS[peer * OPS_PER_SERVICE + rng.randrange(SERVER_OPS)]
        server_end, server_error = self.serve(
            server_op, client_id, start + rng.randrange(200_000, 1_500_000), depth + 1
        )
        end = server_end + rng.randrange(200_000, 1_500_000)
        error = server_error or rng.random() < 0.005
        self.add(client_op, client_id, parent_id, start, end, error)
        return end, error


def service_traces(rng: random.Random, count: int, *, start_ns: int, spread_ns: int) -> Iterator[list[SpanSpec]]:
    """Traces of requests crossing services (10 spans on average) for the service map.

    A root SERVER span in an entry service (frontend or api-gateway); every SERVER span does local work (INTERNAL),
    SQL and Redis calls (CLIENT spans with db.system) and calls peer services: a CLIENT span with peer.service whose
    child is the peer's SERVER span (a paired cross-service call), down to three hops. Some services publish to
    Kafka (PRODUCER with messaging.system); two topics have a CONSUMER span in notifications. Errors propagate
    from a failed server to its caller's client span half of the time.
    """
    for _ in range(count):
        builder = _TraceBuilder(rng, rng.randbytes(16))
        root = OPS[rng.randrange(ENTRY_SERVICES) * OPS_PER_SERVICE + rng.randrange(SERVER_OPS)]
        builder.serve(root, b"", start_ns + rng.randrange(spread_ns), 0)
        yield builder.spans


def service_bodies(n_spans: int, *, seed: int, start_ns: int, spread_ns: int) -> list[tuple[bytes, int]]:
    """Serialized 512-span requests of service_traces holding at least `n_spans` spans, in trace start order.

    Traces start uniformly over [start_ns, start_ns + spread_ns); a trace may straddle two consecutive requests
    (as with a collector), but the last request ends on a trace boundary.
    """
    rng = random.Random(seed)
    traces: list[list[SpanSpec]] = []
    total = 0
    for trace in service_traces(rng, 1 << 62, start_ns=start_ns, spread_ns=spread_ns):
        traces.append(trace)
        total += len(trace)
        if total >= n_spans:
            break
    traces.sort(key=lambda trace: min(span.start_ns for span in trace))
    return [(request_build(batch).SerializeToString(), len(batch)) for batch in batches(traces)]


class Restamper:
    """Re-send a serialized request as new traces at another time, by patching its bytes (no protobuf work).

    Every trace id is XORed with a 16-byte mask and every timestamp (span start / end, event time) is shifted by
    the same offset, so one pool of generated requests can be sent many times as distinct traces, later in time.
    The same mask and shift over consecutive requests keeps a trace that straddles them whole.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.id_positions: list[int] = []
        self.time_positions: list[int] = []
        self.last_start_ns = 0  # the latest span start in the request (before any shift)
        # ExportTraceServiceRequest.resource_spans (1) > ResourceSpans.scope_spans (2) > ScopeSpans.spans (2)
        for _f, res_at, res_end in _fields(body, 0, len(body), want=1):
            for _f2, scope_at, scope_end in _fields(body, res_at, res_end, want=2):
                for _f3, span_at, span_end in _fields(body, scope_at, scope_end, want=2):
                    self._span(span_at, span_end)

    def _span(self, at: int, end: int) -> None:
        # Span.trace_id (1, 16 bytes), start_time_unix_nano (7) and end_time_unix_nano (8) (fixed64), events (11)
        for field, value_at, value_end in _fields(self.body, at, end, want=None):
            if field == 1:
                if value_end - value_at != 16:
                    raise ValueError("trace_id is not 16 bytes")
                self.id_positions.append(value_at)
            elif field in (7, 8):
                self.time_positions.append(value_at)
                if field == 7:
                    start = int.from_bytes(self.body[value_at:value_end], "little")
                    self.last_start_ns = max(self.last_start_ns, start)
            elif field == 11:
                # Span.Event.time_unix_nano (1, fixed64)
                self.time_positions += [p for _f, p, _e in _fields(self.body, value_at, value_end, want=1)]

    def stamp(self, mask: bytes, shift_ns: int) -> bytes:
        out = bytearray(self.body)
        mask_int = int.from_bytes(mask, "big")
        for p in self.id_positions:
            out[p : p + 16] = (int.from_bytes(out[p : p + 16], "big") ^ mask_int).to_bytes(16, "big")
        for p in self.time_positions:
            out[p : p + 8] = (int.from_bytes(out[p : p + 8], "little") + shift_ns).to_bytes(8, "little")
        return bytes(out)


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _fields(buf: bytes, at: int, end: int, *, want: int | None) -> Iterator[tuple[int, int, int]]:
    """(field number, value start, value end) of the protobuf fields in buf[at:end] (only field `want` if set)."""
    while at < end:
        key, at = _varint(buf, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value_at = at
            _v, at = _varint(buf, at)
        elif wire == 1:
            value_at, at = at, at + 8
        elif wire == 2:
            length, value_at = _varint(buf, at)
            at = value_at + length
        elif wire == 5:
            value_at, at = at, at + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if want is None or field == want:
            yield field, value_at, at
