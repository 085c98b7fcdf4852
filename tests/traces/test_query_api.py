"""Read API: trace by id, search, services; access limited to the caller's projects."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import now_ns, otlp_request, post_otlp

T1 = "11111111111111111111111111111111"
T2 = "22222222222222222222222222222222"
T3 = "33333333333333333333333333333333"


@pytest.fixture
def stored(client: Any, ingest_token: str) -> int:
    """Three traces: a fast OK checkout, a slow failing checkout, and a cart call one hour and a half ago."""
    now = now_ns()
    post_otlp(
        client,
        otlp_request(
            [
                {
                    "trace_id": T1,
                    "span_id": "a1" * 8,
                    "name": "POST /checkout",
                    "start": now - 5_000_000_000,
                    "end": now - 5_000_000_000 + 40_000_000,
                    "attributes": {"http.response.status_code": 200, "tenant": "acme"},
                },
                {
                    "trace_id": T1,
                    "span_id": "a2" * 8,
                    "parent_span_id": "a1" * 8,
                    "name": "charge",
                    "kind": 3,
                    "start": now - 4_990_000_000,
                    "end": now - 4_990_000_000 + 20_000_000,
                },
            ],
            service="checkout",
            resource={"deployment.environment": "prod"},
        ),
        ingest_token,
    )
    post_otlp(
        client,
        otlp_request(
            [
                {
                    "trace_id": T2,
                    "span_id": "b1" * 8,
                    "name": "POST /checkout",
                    "start": now - 2_000_000_000,
                    "end": now - 2_000_000_000 + 1_500_000_000,
                    "attributes": {"http.response.status_code": 500},
                    "error": True,
                },
            ],
            service="checkout",
        ),
        ingest_token,
    )
    post_otlp(
        client,
        otlp_request(
            [
                {"trace_id": T3, "span_id": "c1" * 8, "name": "GET /cart", "start": now - 90 * 60 * 10**9},
            ],
            service="cart",
        ),
        ingest_token,
    )
    return now


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [trace["trace_id"] for trace in response.json()["traces"]]


def test_it_returns_the_whole_trace_with_parent_links(api: APIClient, stored: int) -> None:
    response = api.get(f"/api/v1/traces/{T1}")
    assert response.status_code == 200
    trace = response.json()
    assert trace["trace_id"] == T1
    assert trace["span_count"] == 2 and trace["root_service"] == "checkout" and trace["root_name"] == "POST /checkout"
    spans = {span["span_id"]: span for span in trace["spans"]}
    assert spans["a2" * 8]["parent_span_id"] == "a1" * 8
    assert spans["a1" * 8]["parent_span_id"] is None
    assert spans["a2" * 8]["kind"] == "CLIENT"
    assert spans["a1" * 8]["attributes"] == {"http.response.status_code": 200, "tenant": "acme"}
    resource = trace["resources"][spans["a1" * 8]["resource_id"]]
    assert resource["attributes"]["deployment.environment"] == "prod"
    assert int(spans["a1" * 8]["start_ns"]) == stored - 5_000_000_000


def test_it_accepts_upper_case_trace_ids(api: APIClient, stored: int) -> None:
    assert api.get(f"/api/v1/traces/{T1.upper()}").status_code == 200


def test_it_answers_404_for_an_unknown_trace_and_400_for_a_malformed_id(api: APIClient, stored: int) -> None:
    missing = api.get("/api/v1/traces/" + "ab" * 16)
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
    malformed = api.get("/api/v1/traces/not-a-trace-id")
    assert malformed.status_code == 400 and "hexadecimal" in malformed.json()["error"]


def test_it_searches_newest_first_within_the_last_hour_by_default(api: APIClient, stored: int) -> None:
    assert _ids(api.get("/api/v1/traces")) == [T2, T1]


def test_it_filters_by_service_operation_duration_status_and_attributes(api: APIClient, stored: int) -> None:
    assert _ids(api.get("/api/v1/traces", {"service": "checkout", "operation": "POST /checkout"})) == [T2, T1]
    assert _ids(api.get("/api/v1/traces", {"service": "checkout", "min_duration": "1s"})) == [T2]
    assert _ids(api.get("/api/v1/traces", {"service": "checkout", "max_duration": "100ms"})) == [T1]
    assert _ids(api.get("/api/v1/traces", {"status": "error"})) == [T2]
    assert _ids(api.get("/api/v1/traces", {"status": "ok"})) == [T1]
    assert _ids(api.get("/api/v1/traces", {"attr": "http.response.status_code=500"})) == [T2]
    assert _ids(api.get("/api/v1/traces", {"attr": ["tenant=acme", "http.response.status_code=200"]})) == [T1]
    assert _ids(api.get("/api/v1/traces", {"attr": "deployment.environment=prod"})) == [T1], "resource attributes"
    assert _ids(api.get("/api/v1/traces", {"service": "checkout", "operation": "nope"})) == []


def test_it_searches_an_explicit_time_window(api: APIClient, stored: int) -> None:
    two_hours_ago = (stored - 2 * 3600 * 10**9) // 10**9
    assert _ids(api.get("/api/v1/traces", {"start": str(two_hours_ago)})) == [T2, T1, T3]
    assert _ids(api.get("/api/v1/traces", {"start": str(two_hours_ago), "limit": "1"})) == [T2]
    assert _ids(api.get("/api/v1/traces", {"service": "cart", "start": "2020-01-01T00:00:00Z"})) == [T3]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_duration": "fast"}, "not a duration"),
        ({"start": "yesterday"}, "not a time"),
        ({"limit": "0"}, "limit"),
        ({"attr": "novalue"}, "key=value"),
        ({"status": "maybe"}, "status"),
        ({"start": "2030-01-01T00:00:00Z", "end": "2029-01-01T00:00:00Z"}, "before end"),
    ],
)
def test_it_rejects_bad_search_parameters_with_400(api: APIClient, params: dict[str, str], message: str) -> None:
    response = api.get("/api/v1/traces", params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_it_lists_services_and_operations(api: APIClient, stored: int) -> None:
    services = api.get("/api/v1/services").json()["services"]
    assert [service["name"] for service in services] == ["cart", "checkout"]
    operations = api.get("/api/v1/services/checkout/operations").json()["operations"]
    assert {(op["name"], op["kind"]) for op in operations} == {("POST /checkout", "SERVER"), ("charge", "CLIENT")}
    assert api.get("/api/v1/services/nope/operations").status_code == 404


def test_it_requires_authentication_and_refuses_ingest_tokens(stored: int, ingest_token: str) -> None:
    anonymous = APIClient()
    assert anonymous.get(f"/api/v1/traces/{T1}").status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_token}")
    response = anonymous.get(f"/api/v1/traces/{T1}")
    assert response.status_code == 401
    assert "ingest tokens" in response.json()["error"]


def test_it_hides_other_projects_traces(stored: int, django_user_model: Any) -> None:
    from traces.services import api_token_create, project_get_or_create, project_member_add

    outsider = django_user_model.objects.create_user("mallory")
    project_member_add(project=project_get_or_create(name="other")[0], user=outsider)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=outsider)[1]}")
    assert client.get(f"/api/v1/traces/{T1}").status_code == 404
    assert _ids(client.get("/api/v1/traces")) == []
    assert client.get("/api/v1/services").json()["services"] == []


def test_it_accepts_the_browser_session(client: Any, member: Any, stored: int) -> None:
    client.force_login(member)
    assert client.get(f"/api/v1/traces/{T1}").status_code == 200


def test_the_openapi_schema_documents_the_endpoints(client: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/v1/traces", "/api/v1/traces/{trace_id}", "/api/v1/services"} <= set(schema["paths"])


def test_a_search_that_runs_too_long_answers_503_with_advice(api: APIClient, settings: Any) -> None:
    import psycopg
    from django.db import connection

    settings.SEARCH_STATEMENT_TIMEOUT_MS = 300
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    # Another session holds the summary table exclusively, so the search waits until its timeout fires.
    with psycopg.connect(**params) as other:
        other.execute("LOCK TABLE traces IN ACCESS EXCLUSIVE MODE")
        response = api.get("/api/v1/traces")
        other.rollback()
    assert response.status_code == 503
    assert "narrow the time range" in response.json()["error"]
    assert api.get("/api/v1/traces").status_code == 200, "the next search runs normally"


def test_the_schema_declares_bearer_token_auth(client: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_the_schema_documents_the_ingest_endpoints(client: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    otlp = schema["paths"]["/v1/traces"]["post"]
    assert set(otlp["requestBody"]["content"]) == {"application/x-protobuf", "application/json"}
    assert {"200", "400", "401", "413", "415", "429", "503"} <= set(otlp["responses"])
    assert "/api/v2/spans" in schema["paths"] and "/api/v1/import/jaeger" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ingestToken"]["scheme"] == "bearer"
