"""GET /api/v1/traces/<id>/service-graph on traces sent through real ingest."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span
from rest_framework.test import APIClient

from tests.conftest import now_ns, otlp_request, post_otlp

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
MS = 1_000_000


def _send(client: Any, token: str, spans: list[dict[str, Any]], service: str) -> None:
    response = post_otlp(client, otlp_request([{"trace_id": TRACE, **s} for s in spans], service=service), token)
    assert response.status_code == 200, response.content


def _send_shop(client: Any, token: str) -> None:
    """frontend: GET /checkout (root server) > GET /cart (client) and SELECT (client to postgresql "shop");
    cart: GET /cart (server, child of frontend's client span; fails)."""
    start = now_ns() - 10**9
    _send(
        client,
        token,
        [
            {"span_id": "01" * 8, "name": "GET /checkout", "start": start, "end": start + 100 * MS},
            {
                "span_id": "02" * 8,
                "parent_span_id": "01" * 8,
                "name": "GET /cart",
                "kind": Span.SPAN_KIND_CLIENT,
                "start": start + 10 * MS,
                "end": start + 50 * MS,
            },
            {
                "span_id": "03" * 8,
                "parent_span_id": "01" * 8,
                "name": "SELECT orders",
                "kind": Span.SPAN_KIND_CLIENT,
                "start": start + 60 * MS,
                "end": start + 70 * MS,
                "attributes": {"db.system": "postgresql", "db.name": "shop", "server.address": "db-1"},
            },
        ],
        "frontend",
    )
    _send(
        client,
        token,
        [
            {
                "span_id": "04" * 8,
                "parent_span_id": "02" * 8,
                "name": "GET /cart",
                "start": start + 12 * MS,
                "end": start + 48 * MS,
                "error": True,
            },
        ],
        "cart",
    )


def test_it_returns_the_services_calls_and_virtual_nodes_of_a_trace(
    client: Any, ingest_token: str, api: APIClient
) -> None:
    _send_shop(client, ingest_token)
    response = api.get(f"/api/v1/traces/{TRACE}/service-graph")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    graph = response.json()

    assert [(n["id"], n["kind"], n["calls_in"], n["calls_out"], n["errors"]) for n in graph["nodes"]] == [
        ("clients", "clients", 0, 1, 0),
        ("cart", "service", 1, 0, 1),
        ("frontend", "service", 1, 2, 0),
        ("postgresql shop", "database", 1, 0, 0),
    ]
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert set(edges) == {("clients", "frontend"), ("frontend", "cart"), ("frontend", "postgresql shop")}
    cart = edges[("frontend", "cart")]
    assert (cart["calls"], cart["errors"], cart["connection"]) == (1, 1, "http/rpc")
    assert abs(cart["p50_ns"] - 40 * MS) <= 0.02 * 40 * MS  # the client-observed 40 ms, not the server's 36
    assert edges[("frontend", "postgresql shop")]["connection"] == "database"
    assert edges[("clients", "frontend")]["connection"] == "entry"
    assert graph["counts"] == {"paired": 1, "virtual": 1, "parent_child": 0, "entry": 1, "unpaired": 0}
    assert graph["span_count"] == 4


def test_a_trace_with_a_missing_caller_counts_it_as_unpaired(client: Any, ingest_token: str, api: APIClient) -> None:
    start = now_ns() - 10**9
    _send(client, ingest_token, [{"span_id": "09" * 8, "parent_span_id": "08" * 8, "start": start}], "late")
    graph = api.get(f"/api/v1/traces/{TRACE}/service-graph").json()
    assert graph["nodes"] == [
        {"id": "late", "name": "late", "kind": "service", "calls_in": 0, "calls_out": 0, "errors": 0}
    ]
    assert graph["edges"] == []
    assert graph["counts"]["unpaired"] == 1


def test_malformed_unknown_and_foreign_traces(client: Any, ingest_token: str, api: APIClient) -> None:
    response = api.get("/api/v1/traces/not-a-trace/service-graph")
    assert response.status_code == 400
    assert response.json()["error"]  # the project's error shape (traces.api.errors)

    response = api.get(f"/api/v1/traces/{'ab' * 16}/service-graph")
    assert response.status_code == 404
    assert response.json()["error"] == f"trace {'ab' * 16} not found"

    _send_shop(client, ingest_token)
    assert APIClient().get(f"/api/v1/traces/{TRACE}/service-graph").status_code in (401, 403)


def test_a_user_outside_the_project_gets_404(client: Any, ingest_token: str, django_user_model: Any) -> None:
    _send_shop(client, ingest_token)
    stranger = django_user_model.objects.create_user("mallory", password="x")
    other = APIClient()
    other.force_authenticate(stranger)
    response = other.get(f"/api/v1/traces/{TRACE}/service-graph")
    assert response.status_code == 404
    assert "error" in response.json()


def test_it_is_in_the_api_schema(api: APIClient) -> None:
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/traces/{trace_id}/service-graph"]["get"]
    assert operation["summary"] == "Service graph of a trace"
    assert set(operation["responses"]) == {"200", "400", "404"}
