"""Trace files posted by the upload page: viewed without storing (same shapes as the stored-trace API), or stored."""

from __future__ import annotations

import gzip
import secrets
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.conftest import now_ns, otlp_request, post_otlp
from traces import uploads
from traces.models import Project

VIEW = "/api/v1/uploads/view"
STORE = "/api/v1/uploads/store"


def jaeger_file(trace_id: str, *, start_us: int, service: str = "frontend", spans: int = 3) -> dict[str, Any]:
    """A Jaeger JSON download: a root with `spans - 1` children on another host's process."""
    items = [
        {
            "traceID": trace_id,
            "spanID": "1" * 16,
            "operationName": "GET /home",
            "references": [],
            "startTime": start_us,
            "duration": 40_000,
            "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
            "logs": [{"timestamp": start_us + 100, "fields": [{"key": "event", "value": "started"}]}],
            "processID": "p1",
        }
    ]
    for k in range(1, spans):
        items.append(
            {
                "traceID": trace_id,
                "spanID": f"{k + 1:016x}",
                "operationName": "SELECT products",
                "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": "1" * 16}],
                "startTime": start_us + 1000 * k,
                "duration": 500,
                "tags": [{"key": "db.system", "type": "string", "value": "postgresql"}],
                "processID": "p2",
            }
        )
    return {
        "data": [
            {
                "traceID": trace_id,
                "spans": items,
                "processes": {
                    "p1": {"serviceName": service, "tags": [{"key": "host.name", "value": "web-1"}]},
                    "p2": {"serviceName": "catalog", "tags": [{"key": "host.name", "value": "db-1"}]},
                },
            }
        ]
    }


def post_file(client: APIClient, url: str, body: bytes, **params: str) -> Any:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    # The test client sends bytes as they are (its stubs only say str).
    return client.generic("POST", f"{url}?{query}", body, content_type="application/json")  # type: ignore[arg-type]


def test_viewing_a_jaeger_file_answers_the_stored_trace_shapes(api: APIClient, client: Any, ingest_token: str) -> None:
    trace_id = secrets.token_hex(16)
    start_us = now_ns() // 1000 - 10**6
    body = orjson.dumps(jaeger_file(trace_id, start_us=start_us))

    response = post_file(api, VIEW, body)

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["trace_id"] == trace_id and result["rejected"] == 0
    assert [t["trace_id"] for t in result["traces"]] == [trace_id]
    document, analysis = result["document"], result["analysis"]
    assert document["span_count"] == 3 and document["root_name"] == "GET /home"
    assert document["services"] == ["catalog", "frontend"]
    spans = {span["span_id"]: span for span in document["spans"]}
    assert spans["1" * 16]["kind"] == "SERVER" and spans["1" * 16]["events"][0]["name"] == "started"
    assert spans["0000000000000002"]["parent_span_id"] == "1" * 16
    assert spans["0000000000000002"]["start_ns"] == str((start_us + 1000) * 1000)
    resource = document["resources"][spans["0000000000000002"]["resource_id"]]
    assert resource["attributes"]["host.name"] == "db-1"
    assert analysis["order"][0] == "1" * 16 and analysis["adjusted"] is True
    assert set(analysis["spans"]["1" * 16]) == {"depth", "self_ns", "skew_ns", "critical", "critical_ns"}

    # The same trace, stored and read back, has the very same keys: the page renders both with one viewer.
    post_otlp(
        client,
        otlp_request([{"trace_id": trace_id, "span_id": "1" * 16, "start": start_us * 1000}]),
        ingest_token,
    )
    stored = api.get(f"/api/v1/traces/{trace_id}").json()
    stored_analysis = api.get(f"/api/v1/traces/{trace_id}/analysis").json()
    assert set(document) == set(stored)
    assert set(document["spans"][0]) == set(stored["spans"][0])
    assert set(analysis) == set(stored_analysis)


def test_a_file_with_several_traces_lists_them_and_shows_the_one_asked_for(api: APIClient) -> None:
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    start_us = now_ns() // 1000
    document = jaeger_file(first, start_us=start_us)
    document["data"] += jaeger_file(second, start_us=start_us + 5, spans=5)["data"]
    body = orjson.dumps(document)

    default = post_file(api, VIEW, body).json()
    assert [t["trace_id"] for t in default["traces"]] == [first, second]
    assert default["trace_id"] == first and default["document"]["span_count"] == 3

    chosen = post_file(api, VIEW, body, trace_id=second).json()
    assert chosen["trace_id"] == second and chosen["document"]["span_count"] == 5

    missing = post_file(api, VIEW, body, trace_id=secrets.token_hex(16))
    assert missing.status_code == 404 and "holds no trace" in missing.json()["error"]


def test_raw_times_and_analysis_only(api: APIClient) -> None:
    body = orjson.dumps(jaeger_file(secrets.token_hex(16), start_us=now_ns() // 1000))
    result = post_file(api, VIEW, body, adjust="false", parts="analysis").json()
    assert "document" not in result
    assert result["analysis"]["adjusted"] is False


def test_otlp_zipkin_and_gzipped_files_open_too(api: APIClient) -> None:
    trace_id = secrets.token_hex(16)
    start_ns = now_ns()
    otlp = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "ab" * 8,
                                "name": "GET /",
                                "startTimeUnixNano": str(start_ns),
                                "endTimeUnixNano": str(start_ns + 1000),
                            }
                        ]
                    }
                ],
            }
        ]
    }
    zipkin = [{"traceId": trace_id, "id": "cd" * 8, "name": "get", "timestamp": start_ns // 1000, "duration": 7}]
    for body in (orjson.dumps(otlp), gzip.compress(orjson.dumps(otlp)), orjson.dumps(zipkin)):
        response = post_file(api, VIEW, body)
        assert response.status_code == 200, response.content
        assert response.json()["trace_id"] == trace_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the file is empty"),
        (b"{not json", "the file is not JSON"),
        (b'{"data": 3}', "Jaeger JSON must be"),
        (b'{"resourceSpans": []}', "the file holds no spans"),
        (
            orjson.dumps([{"traceId": "zz", "id": "01" * 8, "name": "x", "timestamp": 1, "duration": 1}]),
            "no valid span",
        ),
    ],
)
def test_bad_files_are_refused_with_a_readable_message(api: APIClient, body: bytes, message: str) -> None:
    response = post_file(api, VIEW, body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert message in response.json()["error"]


def test_files_over_the_limit_are_refused(api: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "UPLOAD_MAX_BYTES", 1000)
    body = orjson.dumps(jaeger_file(secrets.token_hex(16), start_us=now_ns() // 1000, spans=20))
    response = post_file(api, VIEW, body)
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_forms_are_refused(api: APIClient) -> None:
    response = api.post(VIEW, {"file": "x"}, format="multipart")
    assert response.status_code == 415
    assert "request body" in response.json()["error"]


def test_uploads_need_a_reader_and_csrf_with_a_session(member: User) -> None:
    body = orjson.dumps(jaeger_file(secrets.token_hex(16), start_us=now_ns() // 1000))
    assert post_file(APIClient(), VIEW, body).status_code in (401, 403)

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(member)
    refused = post_file(browser, VIEW, body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]

    browser.get("/traces/upload/")  # sets the CSRF cookie, as the page does
    token = browser.cookies["csrftoken"].value
    accepted = browser.generic(
        "POST",
        VIEW,
        body,  # type: ignore[arg-type]
        content_type="application/octet-stream",
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 200, accepted.content


def test_storing_a_file_puts_it_in_the_project_and_names_its_page(api: APIClient, project: Project) -> None:
    trace_id = secrets.token_hex(16)
    body = orjson.dumps(jaeger_file(trace_id, start_us=now_ns() // 1000 - 10**6))

    response = post_file(api, STORE, body, project="shop", trace_id=trace_id)

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["trace_ids"] == [trace_id] and result["accepted_spans"] == 3
    assert result["url"] == f"/traces/{trace_id}/"
    stored = api.get(f"/api/v1/traces/{trace_id}").json()
    assert stored["span_count"] == 3 and stored["projects"] == ["shop"]


def test_storing_needs_membership_of_the_project(api: APIClient, project: Project) -> None:
    Project.objects.create(name="billing")
    body = orjson.dumps(jaeger_file(secrets.token_hex(16), start_us=now_ns() // 1000))

    other = post_file(api, STORE, body, project="billing")
    assert other.status_code == 403 and "not a member" in other.json()["error"]
    assert post_file(api, STORE, body).status_code == 400
    assert post_file(api, STORE, b"[]", project="shop").status_code == 400
