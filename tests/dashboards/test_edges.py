"""Edges of one trace: every pairing rule on small hand-built traces, and the aggregated service graph."""

from __future__ import annotations

from typing import Any

from dashboards.edges import (
    KIND_CLIENT,
    KIND_CONSUMER,
    KIND_INTERNAL,
    KIND_PRODUCER,
    KIND_SERVER,
    KIND_UNSPECIFIED,
    Edge,
    EdgeSpan,
    edges_from_trace,
    service_graph,
    virtual_callee,
)
from traces.analysis import SpanLite

MS = 1_000_000


def span(
    span_id: int,
    parent: int | None,
    service: str,
    kind: int = KIND_SERVER,
    *,
    start: int = 0,
    duration: int = 10 * MS,
    error: bool = False,
    **attributes: str,
) -> EdgeSpan:
    return EdgeSpan(
        span_id, parent, start + span_id, duration, kind, service, f"op{span_id}", 2 if error else 0, **attributes
    )


def triples(edges: list[Edge]) -> list[tuple[str, str, str]]:
    return [(e.caller, e.callee, e.connection) for e in edges]


def test_client_and_server_child_in_another_service_are_one_paired_edge() -> None:
    found = edges_from_trace(
        [
            span(1, None, "frontend"),
            span(2, 1, "frontend", KIND_CLIENT, duration=30 * MS),
            span(3, 2, "cart", KIND_SERVER, duration=20 * MS, error=True),
        ]
    )
    assert triples(found.edges) == [("clients", "frontend", "entry"), ("frontend", "cart", "http/rpc")]
    pair = found.edges[1]
    assert (pair.duration_ns, pair.error, pair.callee_kind) == (30 * MS, True, "service")  # client-observed
    assert (pair.caller_span_id, pair.callee_span_id) == (2, 3)
    assert found.counts.as_dict() == {"paired": 1, "virtual": 0, "parent_child": 0, "entry": 1, "unpaired": 0}
    assert found.services == ["cart", "frontend"]


def test_zipkin_shared_span_halves_pair_like_any_client_and_server() -> None:
    # Ingest gives the shared server half its own derived id, child of the client half (traces/ingest/convert.py).
    found = edges_from_trace(
        [span(1, None, "a"), span(2, 1, "a", KIND_CLIENT), span(0xBEEF, 2, "b", KIND_SERVER), span(9, 0xBEEF, "b", 1)]
    )
    assert triples(found.edges) == [("clients", "a", "entry"), ("a", "b", "http/rpc")]
    assert found.counts.paired == 1


def test_producer_and_consumer_child_pair_as_messaging() -> None:
    found = edges_from_trace(
        [span(1, None, "api"), span(2, 1, "api", KIND_PRODUCER), span(3, 2, "worker", KIND_CONSUMER)]
    )
    assert triples(found.edges)[1:] == [("api", "worker", "messaging")]
    assert found.counts.paired == 1


def test_client_with_a_server_child_in_its_own_service_is_not_an_edge() -> None:
    found = edges_from_trace([span(1, None, "a"), span(2, 1, "a", KIND_CLIENT), span(3, 2, "a", KIND_SERVER)])
    assert triples(found.edges) == [("clients", "a", "entry")]
    assert found.counts.as_dict() == {"paired": 0, "virtual": 0, "parent_child": 0, "entry": 1, "unpaired": 0}


def test_database_client_calls_a_virtual_node_named_by_system_and_name() -> None:
    found = edges_from_trace(
        [
            span(1, None, "orders"),
            span(2, 1, "orders", KIND_CLIENT, db_system="postgresql", db_name="orders", server_address="db-1"),
            span(3, 1, "orders", KIND_CLIENT, db_system="redis"),
        ]
    )
    assert triples(found.edges)[1:] == [
        ("orders", "postgresql orders", "database"),
        ("orders", "redis", "database"),
    ]
    assert {e.callee_kind for e in found.edges[1:]} == {"database"}
    assert found.edges[1].callee_span_id is None
    assert found.counts.virtual == 2


def test_virtual_name_precedence() -> None:
    base: dict[str, Any] = {
        "peer_service": "billing-legacy",
        "db_system": "mysql",
        "db_name": "bills",
        "messaging_system": "kafka",
        "messaging_destination": "invoices",
        "server_address": "bills.internal",
    }
    # Each row: what the span calls, then the attribute removed before the next row.
    expected = [
        (("billing-legacy", "database", "database"), "peer_service"),  # the kind still follows db.system
        (("mysql bills", "database", "database"), "db_system"),
        (("kafka invoices", "messaging", "messaging"), "db_name"),  # db.name alone names nothing
        (("kafka invoices", "messaging", "messaging"), "messaging_system"),
        (("bills.internal", "external", "http/rpc"), "messaging_destination"),
        (("bills.internal", "external", "http/rpc"), "server_address"),
        (("", "external", "http/rpc"), ""),
    ]
    attributes = dict(base)
    for want, dropped in expected:
        assert virtual_callee(span(2, 1, "a", KIND_CLIENT, **attributes)) == want, attributes
        attributes[dropped] = ""


def test_peer_service_and_messaging_and_server_address_virtual_nodes() -> None:
    found = edges_from_trace(
        [
            span(1, None, "shop"),
            span(2, 1, "shop", KIND_CLIENT, peer_service="payments-gw", server_address="pay.example"),
            span(3, 1, "shop", KIND_PRODUCER, messaging_system="kafka", messaging_destination="orders"),
            span(4, 1, "shop", KIND_CLIENT, server_address="api.github.com", error=True),
        ]
    )
    assert [(e.callee, e.callee_kind, e.connection, e.error) for e in found.edges[1:]] == [
        ("payments-gw", "external", "http/rpc", False),
        ("kafka orders", "messaging", "messaging", False),
        ("api.github.com", "external", "http/rpc", True),
    ]
    assert found.counts.virtual == 3


def test_client_without_any_name_goes_to_unknown_and_counts_as_unpaired() -> None:
    found = edges_from_trace([span(1, None, "a"), span(2, 1, "a", KIND_CLIENT)])
    assert [(e.callee, e.callee_kind) for e in found.edges[1:]] == [("unknown", "unknown")]
    assert found.counts.unpaired == 1
    assert found.counts.virtual == 0


def test_cross_service_parent_child_without_client_kind_falls_back() -> None:
    found = edges_from_trace(
        [
            span(1, None, "gateway"),
            span(2, 1, "users", KIND_SERVER, duration=4 * MS, error=True),  # uninstrumented client side
            span(3, 1, "audit", KIND_INTERNAL),  # no kinds at all (e.g. a Zipkin span without kind)
            span(4, 1, "gateway", KIND_INTERNAL),  # same service: in-process, nothing
        ]
    )
    assert triples(found.edges)[1:] == [("gateway", "users", "parent-child"), ("gateway", "audit", "parent-child")]
    assert (found.edges[1].duration_ns, found.edges[1].error) == (4 * MS, True)  # the callee's own
    assert found.counts.parent_child == 2


def test_client_whose_remote_child_has_no_kind_still_pairs() -> None:
    found = edges_from_trace(
        [span(1, None, "a"), span(2, 1, "a", KIND_CLIENT, server_address="b:80"), span(3, 2, "b", KIND_UNSPECIFIED)]
    )
    assert triples(found.edges)[1:] == [("a", "b", "http/rpc")]
    assert found.counts.as_dict() == {"paired": 1, "virtual": 0, "parent_child": 0, "entry": 1, "unpaired": 0}


def test_wrapper_client_defers_to_the_nested_client_span() -> None:
    found = edges_from_trace(
        [
            span(1, None, "a"),
            span(2, 1, "a", KIND_CLIENT, server_address="b"),  # requests
            span(3, 2, "a", KIND_CLIENT, server_address="b"),  # urllib3, which really calls
            span(4, 3, "b", KIND_SERVER),
        ]
    )
    assert triples(found.edges) == [("clients", "a", "entry"), ("a", "b", "http/rpc")]


def test_root_server_and_consumer_spans_hang_under_clients_but_root_internal_does_not() -> None:
    found = edges_from_trace(
        [span(1, None, "web"), span(2, None, "worker", KIND_CONSUMER), span(3, None, "cron", KIND_INTERNAL)]
    )
    assert triples(found.edges) == [("clients", "web", "entry"), ("clients", "worker", "entry")]
    assert found.edges[0].caller_span_id is None
    assert found.counts.entry == 2
    assert found.services == ["cron", "web", "worker"]


def test_span_whose_parent_is_missing_is_counted_unpaired() -> None:
    found = edges_from_trace(
        [
            span(1, None, "a"),
            span(5, 999, "b", KIND_SERVER),
            span(6, 5, "b", KIND_INTERNAL),
            span(7, 998, "a", KIND_INTERNAL),  # a lost parent inside a service: not a lost call
        ]
    )
    assert triples(found.edges) == [("clients", "a", "entry")]
    assert found.counts.unpaired == 1


def test_duplicate_ids_and_self_parents_do_not_break_anything() -> None:
    found = edges_from_trace([span(1, 1, "a"), span(1, None, "b"), span(2, 1, "c", KIND_SERVER)])
    assert triples(found.edges) == [("clients", "a", "entry"), ("a", "c", "parent-child")]


def test_edge_span_from_lite_keeps_the_lite_fields() -> None:
    lite = SpanLite(7, 3, 100, 50, KIND_CLIENT, "svc", "GET", 2, "host-1")
    edge_span = EdgeSpan.from_lite(lite, db_system="postgresql")
    assert (edge_span.span_id, edge_span.parent_id, edge_span.host, edge_span.db_system) == (
        7,
        3,
        "host-1",
        "postgresql",
    )
    assert edge_span.error


def test_service_graph_aggregates_calls_errors_latency_and_node_kinds() -> None:
    spans = [span(1, None, "frontend", duration=200 * MS)]
    for k in range(10):
        spans.append(span(10 + k, 1, "frontend", KIND_CLIENT, duration=(k + 1) * MS, error=k == 0))
        spans.append(span(100 + k, 10 + k, "cart", KIND_SERVER))
    spans.append(span(50, 1, "frontend", KIND_CLIENT, db_system="postgresql", db_name="shop"))
    spans.append(span(51, 1, "frontend", KIND_CLIENT, peer_service="cart"))  # merges with the real cart node
    spans.append(span(60, None, "lonely", KIND_INTERNAL))
    found = edges_from_trace(spans)
    graph = service_graph(found.edges, services=found.services)

    nodes = {node["id"]: node for node in graph["nodes"]}
    assert [node["id"] for node in graph["nodes"]] == ["clients", "cart", "frontend", "lonely", "postgresql shop"]
    assert nodes["clients"]["kind"] == "clients"
    assert nodes["cart"] == {
        "id": "cart", "name": "cart", "kind": "service", "calls_in": 11, "calls_out": 0, "errors": 1
    }  # fmt: skip
    assert nodes["postgresql shop"]["kind"] == "database"
    assert nodes["lonely"]["calls_in"] == nodes["lonely"]["calls_out"] == 0
    assert nodes["frontend"]["calls_out"] == 12

    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    cart = edges[("frontend", "cart")]
    assert (cart["calls"], cart["errors"], cart["connection"]) == (11, 1, "http/rpc")
    assert abs(cart["p50_ns"] - 6 * MS) <= 0.02 * 6 * MS  # 1..10 ms and 10 ms: the 6th of 11
    assert abs(cart["p95_ns"] - 10 * MS) <= 0.02 * 10 * MS
    assert edges[("frontend", "postgresql shop")]["connection"] == "database"
    assert edges[("clients", "frontend")]["calls"] == 1


def test_service_graph_of_nothing_is_empty() -> None:
    assert service_graph([]) == {"nodes": [], "edges": []}
