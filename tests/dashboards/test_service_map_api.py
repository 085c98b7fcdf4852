"""The service map API: nodes and edges from rollups, layered layout, neighbourhood, before/after, edge examples."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from rest_framework.test import APIClient

from dashboards.map_layout import map_layout
from dashboards.services import edges_rollup, rollups_compact
from tests.conftest import now_ns, otlp_request, post_otlp

MS = 1_000_000
MINUTE = 60 * 10**9
CLIENT = 3


def _call_chain(
    client: Any, token: str, *, start: int, count: int, payments_ms: int = 20, errors: int = 0, offset: int = 0
) -> list[str]:
    """`count` traces: frontend -> checkout -> payments -> postgres; the first `errors` payments calls fail."""
    traces = []
    by_service: dict[str, list[dict[str, Any]]] = {"frontend": [], "checkout": [], "payments": []}
    for index in range(count):
        trace = secrets.token_hex(16)
        traces.append(trace)
        t = start + (index + offset) * MS
        ids = {name: secrets.token_hex(8) for name in ("fe", "fe_c", "co", "co_c", "pay", "db")}
        failed = index < errors
        by_service["frontend"] += [
            {"trace_id": trace, "span_id": ids["fe"], "name": "GET /", "start": t, "end": t + 200 * MS},
            {
                "trace_id": trace,
                "span_id": ids["fe_c"],
                "parent_span_id": ids["fe"],
                "kind": CLIENT,
                "name": "POST /checkout",
                "start": t + MS,
                "end": t + 150 * MS,
            },
        ]
        by_service["checkout"] += [
            {
                "trace_id": trace,
                "span_id": ids["co"],
                "parent_span_id": ids["fe_c"],
                "name": "POST /checkout",
                "start": t + 2 * MS,
                "end": t + 140 * MS,
            },
            {
                "trace_id": trace,
                "span_id": ids["co_c"],
                "parent_span_id": ids["co"],
                "kind": CLIENT,
                "name": "POST /pay",
                "start": t + 3 * MS,
                "end": t + (5 + payments_ms) * MS,
                "error": failed,
            },
        ]
        by_service["payments"] += [
            {
                "trace_id": trace,
                "span_id": ids["pay"],
                "parent_span_id": ids["co_c"],
                "name": "POST /pay",
                "start": t + 4 * MS,
                "end": t + (4 + payments_ms) * MS,
                "error": failed,
            },
            {
                "trace_id": trace,
                "span_id": ids["db"],
                "parent_span_id": ids["pay"],
                "kind": CLIENT,
                "name": "INSERT",
                "start": t + 5 * MS,
                "end": t + 7 * MS,
                "attributes": {"db.system": "postgresql", "db.name": "ledger"},
            },
        ]
    for service, spans in by_service.items():
        assert post_otlp(client, otlp_request(spans, service=service), token).status_code == 200
    rollups_compact()
    edges_rollup(idle_seconds=0)
    return traces


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


@pytest.fixture
def chain(client: Any, ingest_token: str) -> list[str]:
    return _call_chain(client, ingest_token, start=now_ns() - 5 * MINUTE, count=10, errors=2)


def test_the_map_has_every_call_with_rates_errors_latency_and_a_left_to_right_layout(
    api: APIClient, chain: list[str]
) -> None:
    response = api.get("/api/v1/service-map/", {"lookback": "1h"})
    assert response.status_code == 200, response.content
    body = response.json()
    nodes, edges = _by_id(body["nodes"]), _by_id(body["edges"])
    assert set(nodes) == {"clients", "frontend", "checkout", "payments", "postgresql ledger"}
    assert set(edges) == {
        "clients->frontend",
        "frontend->checkout",
        "checkout->payments",
        "payments->postgresql ledger",
    }
    layers = [nodes[name]["layer"] for name in ("clients", "frontend", "checkout", "payments", "postgresql ledger")]
    assert layers == [0, 1, 2, 3, 4], "columns follow call order"
    assert nodes["postgresql ledger"]["kind"] == "database" and nodes["clients"]["kind"] == "clients"
    pay = edges["checkout->payments"]
    assert (pay["calls"], pay["errors"], pay["error_percent"]) == (10, 2, 20.0)
    assert pay["calls_per_minute"] == pytest.approx(10 / 60, abs=0.001)
    assert pay["connection"] == "http/rpc" and not pay["back_edge"]
    assert pay["server_p95_ns"] is not None and pay["p95_ns"] > pay["server_p95_ns"], "client time includes network"
    assert nodes["payments"]["requests"] == 10 and nodes["payments"]["error_percent"] == 20.0
    assert nodes["postgresql ledger"]["requests"] == 10
    assert body["compare"] is None and body["focus"] is None


def test_neighbourhood_keeps_only_nodes_within_the_hops(api: APIClient, chain: list[str]) -> None:
    one = api.get("/api/v1/service-map/", {"service": "checkout", "hops": "1"}).json()
    assert {n["id"] for n in one["nodes"]} == {"frontend", "checkout", "payments"}
    assert {e["id"] for e in one["edges"]} == {"frontend->checkout", "checkout->payments"}
    two = api.get("/api/v1/service-map/", {"service": "checkout", "hops": "2"}).json()
    assert {n["id"] for n in two["nodes"]} == {"clients", "frontend", "checkout", "payments", "postgresql ledger"}
    assert two["focus"] == {"service": "checkout", "hops": 2}


def test_compare_flags_the_edge_that_got_slower_and_more_error_prone_after_the_chosen_time(
    api: APIClient, client: Any, ingest_token: str
) -> None:
    now = now_ns()
    _call_chain(client, ingest_token, start=now - 30 * MINUTE, count=20, payments_ms=20)
    _call_chain(client, ingest_token, start=now - 10 * MINUTE, count=20, payments_ms=200, errors=5)
    body = api.get("/api/v1/service-map/", {"lookback": "1h", "compare_at": str((now - 20 * MINUTE) // 10**9)}).json()
    edges = _by_id(body["edges"])
    change = edges["checkout->payments"]["change"]
    assert change["slower"] and change["more_errors"]
    assert change["after"]["p95_ns"] > 5 * change["before"]["p95_ns"]
    assert not edges["frontend->checkout"]["change"]["more_errors"]
    assert not edges["payments->postgresql ledger"]["change"]["slower"]
    assert _by_id(body["nodes"])["payments"]["change"]["slower"]
    assert body["compare"]["after"]["start_ns"] == str((now - 20 * MINUTE) // 10**9 // 60 * 60 * 10**9)


def test_an_edge_lists_example_calls_that_open_the_trace(api: APIClient, chain: list[str]) -> None:
    body = api.get("/api/v1/service-map/edge/", {"source": "checkout", "target": "payments"}).json()
    assert body["calls"] == 10 and body["errors"] == 2
    examples = body["examples"]
    assert examples and {e["trace_id"] for e in examples} <= set(chain)
    assert any(e["error"] for e in examples), "failed calls are among the examples"
    first = examples[0]
    trace = api.get(f"/api/v1/traces/{first['trace_id']}")
    assert trace.status_code == 200
    assert first["callee_span_id"] in trace.content.decode(), "the example points at a span of that trace"


def test_edge_without_calls_is_404_and_bad_input_is_400(api: APIClient, chain: list[str]) -> None:
    missing = api.get("/api/v1/service-map/edge/", {"source": "payments", "target": "frontend"})
    assert missing.status_code == 404 and "no calls" in missing.json()["error"]
    assert api.get("/api/v1/service-map/edge/", {"source": "checkout"}).status_code == 400
    outside = api.get("/api/v1/service-map/", {"lookback": "1h", "compare_at": "2001-01-01T00:00:00Z"})
    assert outside.status_code == 400 and "inside the time range" in outside.json()["error"]
    assert api.get("/api/v1/service-map/", {"hops": "99"}).status_code == 400
    assert api.get("/api/v1/service-map/", {"lookback": "soon"}).status_code == 400


def test_the_map_is_private_to_the_projects_a_user_can_see(client: Any, chain: list[str]) -> None:
    assert client.get("/api/v1/service-map/").status_code in (401, 403)
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient as Fresh

    stranger = get_user_model().objects.create_user("mallory", password="mallory-password-1")
    other = Fresh()
    other.force_authenticate(stranger)
    body = other.get("/api/v1/service-map/").json()
    assert body["nodes"] == [] and body["edges"] == []


def test_the_service_page_api_lists_upstream_and_downstream_neighbours(api: APIClient, chain: list[str]) -> None:
    body = api.get("/api/v1/services/payments/").json()
    assert [(n["name"], n["kind"], n["calls"], n["errors"]) for n in body["upstream"]] == [
        ("checkout", "service", 10, 2)
    ]
    assert [(n["name"], n["kind"], n["connection"]) for n in body["downstream"]] == [
        ("postgresql ledger", "database", "database")
    ]
    assert api.get("/api/v1/services/frontend/").json()["upstream"][0]["name"] == "clients"


def test_the_schema_documents_the_map_endpoints(api: APIClient) -> None:
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/service-map/" in schema["paths"] and "/api/v1/service-map/edge/" in schema["paths"]


def test_layout_puts_callers_left_of_callees_and_marks_the_edge_closing_a_cycle() -> None:
    layout = map_layout(
        ["clients", "a", "b", "c", "db"],
        [("clients", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("a", "db"), ("c", "db")],
        first="clients",
    )
    assert layout.back_edges == {("c", "a")}
    assert layout.layer["clients"] < layout.layer["a"] < layout.layer["b"] < layout.layer["c"] < layout.layer["db"]
    for layer in set(layout.layer.values()):
        rows = sorted(layout.order[n] for n, at in layout.layer.items() if at == layer)
        assert rows == list(range(len(rows))), "each column's rows are 0..n-1"


def test_layout_orders_rows_to_avoid_crossings() -> None:
    # Two independent chains: their rows must stay parallel, not cross.
    layout = map_layout(
        ["a1", "a2", "b1", "b2"],
        [("a1", "a2"), ("b1", "b2")],
    )
    assert (layout.order["a1"] < layout.order["b1"]) == (layout.order["a2"] < layout.order["b2"])
    crossing = map_layout(["x", "y", "p", "q"], [("x", "q"), ("y", "p")])
    assert (crossing.order["x"] < crossing.order["y"]) == (crossing.order["q"] < crossing.order["p"])


def test_layout_draws_the_rare_call_back_up_the_stack_as_the_back_edge() -> None:
    # payments calls frontend now and then; the main flow frontend -> payments must stay left to right.
    edges = [("clients", "frontend"), ("frontend", "payments"), ("payments", "frontend"), ("payments", "db")]
    weights = {("clients", "frontend"): 100, ("frontend", "payments"): 90, ("payments", "frontend"): 3}
    layout = map_layout(["clients", "frontend", "payments", "db"], edges, first="clients", weights={**weights})
    assert layout.back_edges == {("payments", "frontend")}
    assert [layout.layer[n] for n in ("clients", "frontend", "payments", "db")] == [0, 1, 2, 3]
    flipped = map_layout(
        ["frontend", "payments"],
        [("frontend", "payments"), ("payments", "frontend")],
        weights={("frontend", "payments"): 1, ("payments", "frontend"): 50},
    )
    assert flipped.back_edges == {("frontend", "payments")}, "the busier direction wins"
