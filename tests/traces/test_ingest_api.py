"""OTLP/HTTP ingest: encodings, status codes by the OTLP spec, durability and idempotency."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
from django.db import connection
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.conftest import now_ns, otlp_request, post_otlp

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT = "eee19b7ec3c1b174"
CHILD = "eee19b7ec3c1b173"


def _tree(start: int | None = None) -> list[dict[str, Any]]:
    start = start or now_ns()
    return [
        {
            "trace_id": TRACE,
            "span_id": ROOT,
            "name": "GET /cart",
            "start": start,
            "end": start + 50_000_000,
            "attributes": {"http.route": "/cart", "http.response.status_code": 200},
        },
        {
            "trace_id": TRACE,
            "span_id": CHILD,
            "parent_span_id": ROOT,
            "name": "SELECT cart",
            "kind": 3,
            "start": start + 1_000_000,
            "end": start + 9_000_000,
            "attributes": {"db.system": "postgresql"},
            "error": True,
        },
    ]


def _span_rows(trace: str = TRACE) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lpad(to_hex(span_id), 16, '0'), name, service_name, http_route, http_status_code, db_system, "
            "status_code FROM spans WHERE trace_id = %s ORDER BY start_ns",
            [trace],
        )
        return cursor.fetchall()


def test_it_stores_protobuf_spans_and_answers_an_empty_protobuf_response(client: Any, ingest_token: str) -> None:
    response = post_otlp(client, otlp_request(_tree()), ingest_token)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse.FromString(response.content)
    assert not parsed.HasField("partial_success")
    rows = _span_rows()
    assert [row[:3] for row in rows] == [(ROOT, "GET /cart", "checkout"), (CHILD, "SELECT cart", "checkout")]
    assert rows[0][3:5] == ("/cart", 200), "hot attributes are promoted to columns"
    assert rows[1][5:] == ("postgresql", 2)


def test_it_keeps_nanosecond_timestamps_exactly(client: Any, ingest_token: str) -> None:
    start = 1_795_255_110_960_128_374 + (
        now_ns() // 86_400_000_000_000 * 86_400_000_000_000 - 1_795_219_200_000_000_000
    )
    spans = _tree(start)
    post_otlp(client, otlp_request(spans), ingest_token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT start_ns, duration_ns FROM spans WHERE trace_id = %s ORDER BY start_ns", [TRACE])
        assert cursor.fetchall() == [(start, 50_000_000), (start + 1_000_000, 8_000_000)]


def test_it_accepts_gzip_bodies(client: Any, ingest_token: str) -> None:
    response = post_otlp(client, otlp_request(_tree()), ingest_token, gzip_body=True)
    assert response.status_code == 200
    assert len(_span_rows()) == 2


def test_it_accepts_otlp_json_with_hex_ids_and_answers_json(client: Any, ingest_token: str) -> None:
    start = now_ns()
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": TRACE.upper(),
                                "spanId": ROOT,
                                "name": "GET /cart",
                                "kind": 2,
                                "startTimeUnixNano": str(start),
                                "endTimeUnixNano": str(start + 1000),
                                "attributes": [{"key": "http.response.status_code", "value": {"intValue": "404"}}],
                                "unknownField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = client.post(
        "/v1/traces",
        orjson.dumps(document),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ingest_token}",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    assert _span_rows() == [(ROOT, "GET /cart", "cart", None, 404, None, 0)]


def test_it_reports_partial_success_for_invalid_spans_and_stores_the_rest(client: Any, ingest_token: str) -> None:
    start = now_ns()
    spans = _tree(start) + [
        {"trace_id": "00" * 16, "span_id": "01" * 8, "start": start},  # all-zero trace id
        {"trace_id": TRACE, "span_id": "abcd", "start": start},  # span id of 2 bytes
        {"trace_id": TRACE, "span_id": "02" * 8, "start": start, "end": start - 1},  # ends before it starts
    ]
    response = post_otlp(client, otlp_request(spans), ingest_token)

    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 3
    assert "trace_id" in partial.error_message and "span_id" in partial.error_message
    assert "before" in partial.error_message
    assert len(_span_rows()) == 2


def test_it_stores_a_resent_batch_once(client: Any, ingest_token: str) -> None:
    request = otlp_request(_tree())
    assert post_otlp(client, request, ingest_token).status_code == 200
    assert post_otlp(client, request, ingest_token).status_code == 200

    assert len(_span_rows()) == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT span_count, error_count FROM traces WHERE trace_id = %s", [TRACE])
        assert cursor.fetchall() == [(2, 1)], "a retry must not inflate the trace summary"


def test_it_stores_new_spans_of_a_partly_resent_batch(client: Any, ingest_token: str) -> None:
    tree = _tree()
    post_otlp(client, otlp_request(tree[:1]), ingest_token)
    post_otlp(client, otlp_request(tree), ingest_token)
    assert len(_span_rows()) == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT span_count, root_name FROM traces WHERE trace_id = %s", [TRACE])
        assert cursor.fetchall() == [(2, "GET /cart")]


def test_it_merges_a_trace_arriving_in_pieces_into_one_summary(client: Any, ingest_token: str) -> None:
    start = now_ns()
    tree = _tree(start)
    post_otlp(client, otlp_request(tree[1:], service="db-client"), ingest_token)
    post_otlp(client, otlp_request(tree[:1], service="edge"), ingest_token)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT start_ns, end_ns, root_service, root_name, span_count, error_count, services FROM traces "
            "WHERE trace_id = %s",
            [TRACE],
        )
        assert cursor.fetchall() == [(start, start + 50_000_000, "edge", "GET /cart", 2, 1, ["db-client", "edge"])]


def test_it_answers_an_empty_request_with_success(client: Any, ingest_token: str) -> None:
    # The test client drops Content-Type for an empty body; an exporter sends it.
    response = client.generic(
        "POST",
        "/v1/traces",
        b"",
        content_type="application/x-protobuf",
        CONTENT_TYPE="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {ingest_token}",
    )
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_it_accepts_bearer_and_x_api_key(client: Any, ingest_token: str, header: str) -> None:
    value = f"Bearer {ingest_token}" if header == "HTTP_AUTHORIZATION" else ingest_token
    headers: dict[str, Any] = {header: value}
    response = post_otlp(client, otlp_request(_tree()), None, **headers)
    assert response.status_code == 200


def test_it_rejects_missing_unknown_and_revoked_tokens_with_401(client: Any, ingest_token: str) -> None:
    from traces.services import token_revoke

    assert post_otlp(client, otlp_request(_tree()), None).status_code == 401
    assert post_otlp(client, otlp_request(_tree()), "tui_ingest_nope").status_code == 401
    token_revoke(prefix_or_token=ingest_token)
    response = post_otlp(client, otlp_request(_tree()), ingest_token)
    assert response.status_code == 401
    assert "revoked" in status_pb2.Status.FromString(response.content).message
    assert _span_rows() == []


def test_it_rejects_an_api_token_for_ingest(client: Any, api_token: str) -> None:
    assert post_otlp(client, otlp_request(_tree()), api_token).status_code == 401


def test_it_answers_undecodable_protobuf_with_400_and_a_status_body(client: Any, ingest_token: str) -> None:
    response = client.generic(
        "POST",
        "/v1/traces",
        b"\xff\xff\xff not protobuf",
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {ingest_token}",
    )
    assert response.status_code == 400
    status = status_pb2.Status.FromString(response.content)
    assert "ExportTraceServiceRequest" in status.message


def test_it_answers_bad_json_with_400_json_status(client: Any, ingest_token: str) -> None:
    response = client.post(
        "/v1/traces", b"{not json", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {ingest_token}"
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_it_answers_another_content_type_with_415(client: Any, ingest_token: str) -> None:
    response = client.post("/v1/traces", b"a=b", content_type="text/plain", HTTP_AUTHORIZATION=f"Bearer {ingest_token}")
    assert response.status_code == 415
    assert "Content-Type" in response.json()["message"]


def test_it_answers_413_above_the_body_limit_even_after_decompression(
    client: Any, ingest_token: str, settings: Any
) -> None:
    settings.INGEST_MAX_BODY_BYTES = 10_000
    big = otlp_request([{**_tree()[0], "attributes": {"blob": "x" * 20_000}}])
    assert post_otlp(client, big, ingest_token).status_code == 413
    compressed = gzip.compress(big.SerializeToString())
    assert len(compressed) < 10_000
    response = client.generic(
        "POST",
        "/v1/traces",
        compressed,
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {ingest_token}",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 413
    assert _span_rows() == []


def test_it_answers_429_with_retry_after_when_every_ingest_slot_is_taken(
    client: Any, ingest_token: str, settings: Any
) -> None:
    import psycopg

    from traces.services import _ADMISSION_LOCK_SPACE

    settings.INGEST_MAX_CONCURRENCY = 1
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, 1)", [_ADMISSION_LOCK_SPACE])
        response = post_otlp(client, otlp_request(_tree()), ingest_token)
    assert response.status_code == 429
    assert response["Retry-After"] == str(settings.INGEST_RETRY_AFTER_SECONDS)
    assert _span_rows() == []


def test_it_rejects_spans_too_far_in_the_future(client: Any, ingest_token: str) -> None:
    future = now_ns() + 10 * 86_400 * 10**9
    response = post_otlp(client, otlp_request(_tree(future)), ingest_token)
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2
    assert "future" in partial.error_message


def test_it_stores_an_old_span_in_the_default_partition(client: Any, ingest_token: str) -> None:
    old = now_ns() - 40 * 86_400 * 10**9
    assert post_otlp(client, otlp_request(_tree(old)), ingest_token).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM spans_default WHERE trace_id = %s", [TRACE])
        assert cursor.fetchone() == (2,)


def test_it_answers_get_with_405(client: Any) -> None:
    assert client.get("/v1/traces").status_code == 405


def test_it_stores_nul_characters_as_replacement_characters(client: Any, ingest_token: str) -> None:
    spans = _tree()
    spans[0]["name"] = "GET /a\x00b"
    spans[0]["attributes"] = {"k\x00ey": "va\x00lue", "http.route": "/x\x00"}
    response = post_otlp(client, otlp_request(spans, service="svc\x00", resource={"host.name": "h\x00"}), ingest_token)
    assert response.status_code == 200
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    rows = _span_rows()
    assert rows[0][1:4] == ("GET /a\ufffdb", "svc\ufffd", "/x\ufffd")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attributes FROM spans WHERE span_id = %s", [int.from_bytes(bytes.fromhex(ROOT), "big", signed=True)]
        )
        assert orjson.loads(cursor.fetchone()[0]) == {"k\ufffdey": "va\ufffdlue", "http.route": "/x\ufffd"}
