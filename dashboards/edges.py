"""Service-to-service edges of one trace and the service graph they make. Pure functions; no ORM.

Rules (Tempo's service-graph pairing, with Jaeger's parent-child fallback; see ../shared/anchors/trace-ui.md 1.3,
2, 3.3 and 4), applied to each span once:

- pair: a CLIENT/PRODUCER span with a child in ANOTHER service of kind SERVER/CONSUMER is one edge per such child
  (caller = client's service, duration = the client-observed one). If no such child exists, a child in another
  service of kind INTERNAL/UNSPECIFIED pairs instead (a server whose instrumentation set no kind).
- same service: a client whose server child is in its own service is an in-process hop, not an edge.
- wrapper: a client/producer whose only effect is a nested client/producer of the same service (requests ->
  urllib3) defers to the nested span, so one call is not counted twice.
- virtual: a client/producer with no child in another service calls something uninstrumented. The callee is named
  by peer.service, else db.system + db.name ("postgresql orders"), else messaging.system + destination, else
  server.address; it is a virtual node of kind database / messaging / external. When no name can be derived the
  callee is "unknown" and the span counts as unpaired.
- parent-child: a span (not a client/producer-paired child) whose parent is in another service but is not a
  client/producer (the caller's client side is uninstrumented) gives an edge parent.service -> span.service with
  the callee's duration.
- entry: a root SERVER/CONSUMER span is called by the synthetic "clients" node.
- unpaired: a SERVER/CONSUMER span whose parent id is not in the trace (the caller never arrived) gives no edge
  but is counted, like Tempo's expired half-pairs; so is a client span whose callee cannot be named (see virtual).

Cross-trace messaging (a consumer linked to its producer by a span link in another trace) is not followed yet: it
needs the link table and a second trace's spans; a per-trace graph shows such consumers as unpaired or as roots.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from traces.analysis import STATUS_ERROR, SpanLite

from .histogram import LatencyHistogram

KIND_UNSPECIFIED = 0
KIND_INTERNAL = 1
KIND_SERVER = 2
KIND_CLIENT = 3
KIND_PRODUCER = 4
KIND_CONSUMER = 5
CALLER_KINDS = frozenset({KIND_CLIENT, KIND_PRODUCER})
CALLEE_KINDS = frozenset({KIND_SERVER, KIND_CONSUMER})

CLIENTS_NODE = "clients"
UNKNOWN_NODE = "unknown"

# Edge.callee_kind / node kinds: "service" is instrumented; everything else except "clients" is a virtual node.
NODE_SERVICE = "service"
NODE_DATABASE = "database"
NODE_MESSAGING = "messaging"
NODE_EXTERNAL = "external"
NODE_CLIENTS = "clients"
NODE_UNKNOWN = "unknown"

CONN_RPC = "http/rpc"
CONN_DATABASE = "database"
CONN_MESSAGING = "messaging"
CONN_PARENT_CHILD = "parent-child"
CONN_ENTRY = "entry"


@dataclass(slots=True)
class EdgeSpan:
    """SpanLite's fields plus the promoted attributes that name virtual nodes ("" when absent)."""

    span_id: int
    parent_id: int | None
    start: int
    duration: int
    kind: int
    service: str
    name: str
    status: int
    host: str = ""
    peer_service: str = ""
    db_system: str = ""
    db_name: str = ""
    messaging_system: str = ""
    messaging_destination: str = ""
    server_address: str = ""

    @classmethod
    def from_lite(cls, span: SpanLite, **attributes: str) -> EdgeSpan:
        return cls(
            span.span_id,
            span.parent_id,
            span.start,
            span.duration,
            span.kind,
            span.service,
            span.name,
            span.status,
            span.host,
            **attributes,
        )

    @property
    def error(self) -> bool:
        return self.status == STATUS_ERROR


@dataclass(slots=True, frozen=True)
class Edge:
    """One call from `caller` to `callee`. `callee_kind` is "service" for an instrumented callee, else the virtual
    node's kind (database / messaging / external / unknown). `caller_span_id` is None for entry edges."""

    caller: str
    callee: str
    callee_kind: str
    connection: str
    duration_ns: int
    error: bool
    caller_span_id: int | None
    callee_span_id: int | None
    # When the call started (the span that owns the edge: the caller's for pairs and virtual calls, else the
    # callee's), so rollups can bucket it by minute.
    start_ns: int = 0
    # The callee's own duration for a paired call: client minus server time is network, queueing or retries.
    server_duration_ns: int | None = None


@dataclass(slots=True)
class EdgeCounts:
    paired: int = 0
    virtual: int = 0
    parent_child: int = 0
    entry: int = 0
    unpaired: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "paired": self.paired,
            "virtual": self.virtual,
            "parent_child": self.parent_child,
            "entry": self.entry,
            "unpaired": self.unpaired,
        }


@dataclass(slots=True)
class TraceEdges:
    edges: list[Edge] = field(default_factory=list)
    counts: EdgeCounts = field(default_factory=EdgeCounts)
    services: list[str] = field(default_factory=list)  # every service with a span, sorted
    # SERVER/CONSUMER spans whose caller never arrived: (service, start_ns), for the unpaired counts of rollups.
    unpaired_callees: list[tuple[str, int]] = field(default_factory=list)


def virtual_callee(span: EdgeSpan) -> tuple[str, str, str]:
    """(name, node kind, connection) of the uninstrumented thing a client/producer span calls; name "" if none."""
    if span.db_system:
        kind, connection = NODE_DATABASE, CONN_DATABASE
    elif span.messaging_system or span.kind == KIND_PRODUCER:
        kind, connection = NODE_MESSAGING, CONN_MESSAGING
    else:
        kind, connection = NODE_EXTERNAL, CONN_RPC
    if span.peer_service:
        name = span.peer_service
    elif span.db_system:
        name = f"{span.db_system} {span.db_name}" if span.db_name else span.db_system
    elif span.messaging_system:
        dest = span.messaging_destination
        name = f"{span.messaging_system} {dest}" if dest else span.messaging_system
    else:
        name = span.server_address
    return name, kind, connection


def _pair_connection(client: EdgeSpan, server: EdgeSpan) -> str:
    if client.kind == KIND_PRODUCER or server.kind == KIND_CONSUMER:
        return CONN_MESSAGING
    if client.db_system:
        return CONN_DATABASE
    return CONN_RPC


def edges_from_trace(spans: Iterable[EdgeSpan]) -> TraceEdges:
    """The edges of one trace (see the module docstring for the rules) with per-rule counts."""
    by_id: dict[int, EdgeSpan] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)  # duplicate ids keep the first, as traces.analysis.tree_build does
    children: dict[int, list[EdgeSpan]] = defaultdict(list)
    for span in by_id.values():
        if span.parent_id is not None and span.parent_id != span.span_id and span.parent_id in by_id:
            children[span.parent_id].append(span)
    for kids in children.values():
        kids.sort(key=lambda s: (s.start, s.span_id))

    out = TraceEdges(services=sorted({s.service for s in by_id.values()}))
    counts = out.counts
    ordered = sorted(by_id.values(), key=lambda s: (s.start, s.span_id))
    for span in ordered:
        parent_id = span.parent_id if span.parent_id != span.span_id else None
        parent = by_id.get(parent_id) if parent_id is not None else None

        # Callee side: entry, unpaired, or parent-child fallback (pairs are emitted from the client side).
        if parent_id is None:
            if span.kind in CALLEE_KINDS:
                counts.entry += 1
                out.edges.append(
                    Edge(
                        CLIENTS_NODE,
                        span.service,
                        NODE_SERVICE,
                        CONN_ENTRY,
                        span.duration,
                        span.error,
                        None,
                        span.span_id,
                        span.start,
                    )
                )
        elif parent is None:
            if span.kind in CALLEE_KINDS:  # an internal orphan is a lost parent, not a lost caller
                counts.unpaired += 1
                out.unpaired_callees.append((span.service, span.start))
        elif parent.service != span.service and parent.kind not in CALLER_KINDS:
            counts.parent_child += 1
            out.edges.append(
                Edge(
                    parent.service,
                    span.service,
                    NODE_SERVICE,
                    CONN_PARENT_CHILD,
                    span.duration,
                    span.error,
                    parent.span_id,
                    span.span_id,
                    span.start,
                )
            )

        # Caller side.
        if span.kind not in CALLER_KINDS:
            continue
        kids = children.get(span.span_id, [])
        remote = [k for k in kids if k.service != span.service and k.kind in CALLEE_KINDS]
        if not remote:
            remote = [k for k in kids if k.service != span.service and k.kind in (KIND_INTERNAL, KIND_UNSPECIFIED)]
        if remote:
            for server in remote:
                counts.paired += 1
                out.edges.append(
                    Edge(
                        span.service,
                        server.service,
                        NODE_SERVICE,
                        _pair_connection(span, server),
                        span.duration,
                        span.error or server.error,
                        span.span_id,
                        server.span_id,
                        span.start,
                        server.duration,
                    )
                )
            continue
        if any(k.service == span.service and (k.kind in CALLEE_KINDS or k.kind in CALLER_KINDS) for k in kids):
            continue  # an in-process hop, or a wrapper around the client span that really makes the call
        if any(k.service != span.service for k in kids):
            continue  # a client/producer child in another service: odd, but that child speaks for the call
        name, kind, connection = virtual_callee(span)
        if not name:
            counts.unpaired += 1
            name, kind = UNKNOWN_NODE, NODE_UNKNOWN
        else:
            counts.virtual += 1
        out.edges.append(
            Edge(span.service, name, kind, connection, span.duration, span.error, span.span_id, None, span.start)
        )
    return out


def service_graph(edges: Iterable[Edge], *, services: Iterable[str] = ()) -> dict[str, Any]:
    """Aggregate edges per (caller, callee).

    Returns {"nodes": [{id, name, kind, calls_in, calls_out, errors}], "edges": [{source, target, calls, errors,
    p50_ns, p95_ns, connection}]}. Node ids are the names: a virtual node named by peer.service merges with the
    service of that name (as in Tempo). `errors` on a node counts failed calls into it. `services` adds nodes for
    services without edges. An edge's connection is the most common one among its calls. Nodes: "clients" first,
    then by name; edges by (source, target).
    """
    kinds: dict[str, str] = {}
    calls_in: Counter[str] = Counter()
    calls_out: Counter[str] = Counter()
    node_errors: Counter[str] = Counter()
    groups: dict[tuple[str, str], tuple[LatencyHistogram, Counter[str], list[int]]] = {}

    def kind_of(name: str, kind: str) -> None:
        # An instrumented service wins over a virtual guess of the same name.
        if kinds.get(name) != NODE_SERVICE:
            kinds[name] = kind

    for name in services:
        kind_of(name, NODE_SERVICE)
    for edge in edges:
        kind_of(
            edge.caller, NODE_CLIENTS if edge.caller == CLIENTS_NODE and edge.connection == CONN_ENTRY else NODE_SERVICE
        )
        kind_of(edge.callee, edge.callee_kind)
        calls_out[edge.caller] += 1
        calls_in[edge.callee] += 1
        key = (edge.caller, edge.callee)
        group = groups.get(key)
        if group is None:
            group = groups[key] = (LatencyHistogram(), Counter(), [0, 0])
        histogram, connections, tally = group
        histogram.add(edge.duration_ns)
        connections[edge.connection] += 1
        tally[0] += 1
        if edge.error:
            tally[1] += 1
            node_errors[edge.callee] += 1

    def node_order(name: str) -> tuple[int, str]:
        return (0 if kinds[name] == NODE_CLIENTS else 1, name)

    nodes = [
        {
            "id": name,
            "name": name,
            "kind": kinds[name],
            "calls_in": calls_in[name],
            "calls_out": calls_out[name],
            "errors": node_errors[name],
        }
        for name in sorted(kinds, key=node_order)
    ]
    out_edges = []
    for (source, target), (histogram, connections, tally) in sorted(groups.items()):
        p50, p95 = histogram.quantile(0.5), histogram.quantile(0.95)
        out_edges.append(
            {
                "source": source,
                "target": target,
                "calls": tally[0],
                "errors": tally[1],
                "p50_ns": round(p50 or 0),
                "p95_ns": round(p95 or 0),
                # Ties go to the connection seen first, so the answer does not depend on hash order.
                "connection": connections.most_common(1)[0][0],
            }
        )
    return {"nodes": nodes, "edges": out_edges}
