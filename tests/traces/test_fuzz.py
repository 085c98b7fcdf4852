"""Whatever a client sends to an ingest endpoint, the answer is a 2xx or a 4xx in the client's encoding, never a 500.

Property-based: hypothesis throws arbitrary bytes, mutated valid OTLP payloads (protobuf and JSON, gzip or not, with
valid and invalid Content-Types) and arbitrary JSON at the endpoints through Django's test client, which re-raises
any exception a view lets escape, so a crash fails the test with the offending input.

The regression tests at the bottom pin the 500s these fuzzers found, with the behaviour chosen for each.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import secrets
import zlib
from typing import Any

import orjson
import psycopg
import pytest
from django.db import connection
from django.test import Client
from google.protobuf import json_format
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import now_ns, otlp_request, post_otlp
from traces.ingest import otlp

BODY_LIMIT = 256 * 1024
OTLP_STATUSES = {200, 400, 413, 415}

FUZZ = settings(
    # FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps the suite fast.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,  # no example database in the repository; a failure prints the reproducing input
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# NUL included on purpose: PostgreSQL text and jsonb cannot hold it, so ingest must replace it.
text = st.text(st.characters(codec="utf-8"), max_size=24)  # any code point but lone surrogates
int64 = st.integers(-(2**63), 2**63 - 1)
uint64 = st.integers(0, 2**64 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)
uint32 = st.integers(0, 2**32 - 1)
# Fixed for the session: strategies must not depend on the clock, or hypothesis cannot replay what it found.
NOW_NS = now_ns()
TRACE_IDS = [secrets.token_bytes(16) for _ in range(2)] + [bytes(16), b"\x01" * 15]


@pytest.fixture
def small_body_limit(settings: Any) -> None:
    settings.INGEST_MAX_BODY_BYTES = BODY_LIMIT


# --- Valid OTLP requests ---------------------------------------------------------------------------------------

any_values = st.recursive(
    st.one_of(text, int64, st.floats(), st.booleans(), st.binary(max_size=12)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)


def set_any_value(target: Any, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            set_any_value(target.array_value.values.add(), item)
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            kv = target.kvlist_value.values.add()
            kv.key = key
            set_any_value(kv.value, item)
    else:
        target.string_value = value


def add_attributes(target: Any, attributes: dict[str, Any]) -> None:
    for key, value in attributes.items():
        kv = target.add()
        kv.key = key
        set_any_value(kv.value, value)


attribute_maps = st.dictionaries(
    st.one_of(text, st.sampled_from(["password", "http.route", "http.response.status_code", "peer.service"])),
    any_values,
    max_size=4,
)


@st.composite
def export_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    """A mostly valid ExportTraceServiceRequest: real-looking IDs and times, arbitrary names and attributes."""
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rs = request.resource_spans.add()
        add_attributes(rs.resource.attributes, {"service.name": draw(text), **draw(attribute_maps)})
        rs.schema_url = draw(st.sampled_from(["", "https://opentelemetry.io/schemas/1.26.0"]))
        ss = rs.scope_spans.add()
        ss.scope.name = draw(text)
        for _ in range(draw(st.integers(0, 3))):
            span = ss.spans.add()
            span.trace_id = draw(st.sampled_from(TRACE_IDS))
            span.span_id = draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=9)))
            span.parent_span_id = draw(st.one_of(st.just(b""), st.binary(min_size=8, max_size=8)))
            span.name = draw(text)
            span.kind = draw(st.one_of(st.integers(0, 5), int32))
            span.start_time_unix_nano = draw(st.one_of(st.integers(NOW_NS - 10**12, NOW_NS + 10**12), uint64))
            span.end_time_unix_nano = draw(
                st.one_of(
                    st.integers(span.start_time_unix_nano, min(span.start_time_unix_nano + 10**10, 2**64 - 1)), uint64
                )
            )
            span.status.code = draw(st.one_of(st.integers(0, 2), int32))
            span.flags = draw(st.one_of(st.sampled_from([0, 1, 0x101, 0x301]), uint32))
            span.dropped_attributes_count = draw(st.one_of(st.just(0), uint32))
            span.dropped_events_count = draw(st.one_of(st.just(0), uint32))
            span.status.message = draw(text)
            span.trace_state = draw(st.sampled_from(["", "vendor=1"]))
            add_attributes(span.attributes, draw(attribute_maps))
            for _ in range(draw(st.integers(0, 2))):
                event = span.events.add()
                event.name = draw(text)
                event.time_unix_nano = draw(uint64)
                add_attributes(event.attributes, draw(attribute_maps))
            if draw(st.booleans()):
                link = span.links.add()
                link.trace_id = draw(st.binary(max_size=16))
                link.span_id = draw(st.binary(max_size=8))
                add_attributes(link.attributes, draw(attribute_maps))
    return request


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON as exporters write it: hex IDs (protobuf's JSON mapping would use base64)."""
    document = json_format.MessageToDict(request)
    for rs in document.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return document


# --- Mutations -------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), text),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """Overwrite, insert, delete or truncate at random positions."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(buffer)))
        operation = draw(st.sampled_from(["overwrite", "insert", "delete", "truncate"]))
        if operation == "overwrite" and position < len(buffer):
            buffer[position] = draw(st.integers(0, 255))
        elif operation == "insert":
            buffer[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del buffer[position : position + draw(st.integers(1, 8))]
        elif operation == "truncate":
            del buffer[position:]
    return bytes(buffer)


@st.composite
def json_mutations(draw: st.DrawFn, document: Any) -> Any:
    """Replace one node (anywhere in the tree) with an arbitrary JSON value, or drop a key."""
    document = json.loads(json.dumps(document))
    parent: Any = None
    key: Any = None
    node = document
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)) > 0:
        parent = node
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        node = node[key]
    if parent is None:
        return draw(json_values)
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(json_values)
    return document


CONTENT_TYPES = [
    "application/x-protobuf",
    "application/protobuf",
    "application/x-protobuf; charset=binary",
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "",
    "application/xml",
    "multipart/form-data; boundary=xyz",
    "application/x-www-form-urlencoded",
]


@st.composite
def otlp_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """(body, encoding): a valid request as protobuf or JSON, maybe mutated, maybe gzip-compressed or a gzip bomb."""
    request = draw(export_requests())
    if draw(st.booleans()):
        body = request.SerializeToString()
        mutate_bytes = draw(st.booleans())
    else:
        document = otlp_json(request)
        if draw(st.booleans()):
            document = draw(json_mutations(document))
        body = json.dumps(document).encode()
        mutate_bytes = draw(st.integers(0, 3)) == 0
    if mutate_bytes:
        body = draw(byte_mutations(body))
    shape = draw(st.sampled_from(["plain", "gzip", "gzip-mutated", "deflate", "bomb", "mislabelled"]))
    if shape == "gzip":
        return gzip.compress(body), "gzip"
    if shape == "gzip-mutated":
        return draw(byte_mutations(gzip.compress(body))), "gzip"
    if shape == "deflate":
        return zlib.compress(body), "deflate"
    if shape == "bomb":
        return gzip.compress(body + bytes(BODY_LIMIT)), "gzip"
    if shape == "mislabelled":
        return body, draw(st.sampled_from(["gzip", "br", "gzip, identity", "compress"]))
    return body, draw(st.sampled_from(["", "identity"]))


# --- Checks ----------------------------------------------------------------------------------------------------


def check_otlp_response(response: Any, *, content_type: str) -> None:
    assert response.status_code in OTLP_STATUSES, (response.status_code, response.content[:300])
    expected = otlp.content_type_parse(content_type)
    if expected is None:
        assert response.status_code == 415
        expected = otlp.JSON
    # The answer is in the request's encoding: protobuf for protobuf, JSON for JSON (and for unusable types).
    assert response["Content-Type"] == expected
    if expected == otlp.PROTOBUF:
        if response.status_code == 200:
            ExportTraceServiceResponse.FromString(response.content)
        else:
            assert status_pb2.Status.FromString(response.content).message
    else:
        body = orjson.loads(response.content)
        assert isinstance(body, dict)
        if response.status_code != 200:
            assert body["message"]
            assert isinstance(body["code"], int)


def post_raw(client: Client, body: bytes, *, token: str, content_type: str, encoding: str) -> Any:
    # CONTENT_TYPE is set explicitly: the test client leaves it out when the body is empty; real clients do not.
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}", "CONTENT_TYPE": content_type}
    if encoding:
        headers["HTTP_CONTENT_ENCODING"] = encoding
    return client.generic("POST", "/v1/traces", body, content_type=content_type, **headers)


# --- Fuzzers ---------------------------------------------------------------------------------------------------


@FUZZ
@given(payload=otlp_bodies(), content_type=st.sampled_from(CONTENT_TYPES))
def test_otlp_mutated_payloads_never_500(
    client: Client, ingest_token: str, small_body_limit: None, payload: tuple[bytes, str], content_type: str
) -> None:
    body, encoding = payload
    note(f"content_type={content_type!r} encoding={encoding!r} body={body[:200]!r}")
    response = post_raw(client, body, token=ingest_token, content_type=content_type, encoding=encoding)
    check_otlp_response(response, content_type=content_type)


@FUZZ
@given(
    body=st.binary(max_size=2048),
    content_type=st.sampled_from(CONTENT_TYPES),
    encoding=st.sampled_from(["", "identity", "gzip", "deflate", "br"]),
)
def test_otlp_arbitrary_bytes_never_500(
    client: Client, ingest_token: str, small_body_limit: None, body: bytes, content_type: str, encoding: str
) -> None:
    response = post_raw(client, body, token=ingest_token, content_type=content_type, encoding=encoding)
    check_otlp_response(response, content_type=content_type)


@FUZZ
@given(request=export_requests())
def test_otlp_valid_requests_are_accepted_and_counted(
    client: Client, ingest_token: str, request: ExportTraceServiceRequest
) -> None:
    response = post_otlp(client, request, ingest_token)
    assert response.status_code == 200, response.content
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    invalid = [
        span
        for span in spans
        if len(span.trace_id) != 16
        or span.trace_id == bytes(16)
        or len(span.span_id) != 8
        or span.span_id == bytes(8)
        or span.end_time_unix_nano < span.start_time_unix_nano
        or span.start_time_unix_nano > now_ns() + 2 * 86_400 * 10**9
        or span.end_time_unix_nano >= 2**63
        or not 0 <= span.kind <= 5
        or not 0 <= span.status.code <= 2
    ]
    assert partial.rejected_spans == len(invalid)
    assert bool(partial.error_message) == bool(invalid)


zipkin_spans = st.fixed_dictionaries(
    {},
    optional={
        "traceId": st.one_of(st.just(secrets.token_hex(16)), st.just(secrets.token_hex(8)), json_values),
        "id": st.one_of(st.just(secrets.token_hex(8)), json_values),
        "parentId": st.one_of(st.just(secrets.token_hex(8)), json_values),
        "name": st.one_of(text, json_values),
        "kind": st.one_of(st.sampled_from(["CLIENT", "SERVER", "PRODUCER", "CONSUMER"]), json_values),
        "timestamp": st.one_of(st.integers(0, 2**64), st.just(NOW_NS // 1000), json_values),
        "duration": st.one_of(st.integers(0, 2**64), json_values),
        "shared": st.one_of(st.booleans(), json_values),
        "localEndpoint": st.one_of(
            st.fixed_dictionaries({}, optional={"serviceName": json_values, "ipv4": json_values}), json_values
        ),
        "remoteEndpoint": st.one_of(
            st.fixed_dictionaries({}, optional={"serviceName": json_values, "port": json_values}), json_values
        ),
        "tags": st.one_of(st.dictionaries(text, json_values, max_size=4), json_values),
        "annotations": st.one_of(
            st.lists(st.fixed_dictionaries({}, optional={"timestamp": json_values, "value": json_values})),
            json_values,
        ),
    },
)

jaeger_tags = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "key": st.one_of(st.sampled_from(["span.kind", "error", "otel.status_code", "x"]), json_values),
            "type": st.one_of(st.sampled_from(["string", "int64", "float64", "bool", "binary"]), json_values),
            "value": json_values,
        },
    ),
    max_size=4,
)

jaeger_spans = st.fixed_dictionaries(
    {},
    optional={
        "traceID": st.one_of(st.just(secrets.token_hex(16)), json_values),
        "spanID": st.one_of(st.just(secrets.token_hex(8)), json_values),
        "operationName": json_values,
        "startTime": st.one_of(st.just(NOW_NS // 1000), json_values),
        "duration": json_values,
        "flags": json_values,
        "processID": st.one_of(st.just("p1"), json_values),
        "process": json_values,
        "tags": st.one_of(jaeger_tags, json_values),
        "references": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "refType": st.sampled_from(["CHILD_OF", "FOLLOWS_FROM", "OTHER"]),
                        "traceID": json_values,
                        "spanID": json_values,
                    },
                ),
                max_size=3,
            ),
            json_values,
        ),
        "logs": st.one_of(
            st.lists(st.fixed_dictionaries({}, optional={"timestamp": json_values, "fields": jaeger_tags}), max_size=2),
            json_values,
        ),
    },
)

jaeger_documents = st.one_of(
    st.fixed_dictionaries(
        {
            "data": st.lists(
                st.fixed_dictionaries(
                    {"spans": st.lists(jaeger_spans, max_size=4)},
                    optional={
                        "processes": st.one_of(
                            st.dictionaries(
                                st.just("p1"),
                                st.fixed_dictionaries(
                                    {},
                                    optional={"serviceName": json_values, "tags": st.one_of(jaeger_tags, json_values)},
                                ),
                            ),
                            json_values,
                        ),
                    },
                ),
                max_size=2,
            )
        }
    ),
    st.fixed_dictionaries({"spans": st.lists(jaeger_spans, max_size=3)}),
    json_values,
)


def check_json_ingest_response(response: Any, *, success: int) -> None:
    assert response.status_code in {success, 400, 413}, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if response.status_code == success:
        assert body["accepted_spans"] + body["rejected_spans"] >= 0
        assert all(len(trace_id) == 32 for trace_id in body["trace_ids"])
    else:
        assert body["error"]


def post_json_document(client: Client, path: str, document: Any, token: str) -> Any:
    # The standard library writes integers beyond 64 bits, which clients do send.
    body = json.dumps(document).encode()
    return client.generic("POST", path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


@FUZZ
@given(document=st.one_of(st.lists(zipkin_spans, max_size=4), json_values))
def test_zipkin_arbitrary_json_never_500(client: Client, ingest_token: str, document: Any) -> None:
    response = post_json_document(client, "/api/v2/spans", document, ingest_token)
    check_json_ingest_response(response, success=202)


@FUZZ
@given(document=jaeger_documents)
def test_jaeger_arbitrary_json_never_500(client: Client, ingest_token: str, document: Any) -> None:
    response = post_json_document(client, "/api/v1/import/jaeger", document, ingest_token)
    check_json_ingest_response(response, success=200)


# --- 500s the fuzzers found, pinned with the behaviour chosen for each ------------------------------------------


def one_span_request(**fields: Any) -> ExportTraceServiceRequest:
    request = otlp_request([{"trace_id": secrets.token_hex(16), "span_id": "00000000000000aa", "start": now_ns()}])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for name, value in fields.items():
        if name == "status_code":
            span.status.code = value
        elif name == "attribute":
            kv = span.attributes.add()
            kv.key = value[0]
            if isinstance(value[1], float):
                kv.value.double_value = value[1]
            else:
                kv.value.string_value = value[1]
        else:
            setattr(span, name, value)
    return request


def read_span(api: Any, request: ExportTraceServiceRequest) -> dict[str, Any] | None:
    trace_id = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    response = api.get(f"/api/v1/traces/{trace_id}")
    if response.status_code == 404:
        return None
    (span,) = orjson.loads(response.content)["spans"]
    return dict(span)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"kind": 70_000}, "unknown span kind", id="kind-beyond-smallint"),
        pytest.param({"kind": 6}, "unknown span kind", id="kind-6"),
        pytest.param({"kind": -1}, "unknown span kind", id="kind-negative"),
        pytest.param({"status_code": 40_000}, "unknown status code", id="status-beyond-smallint"),
        pytest.param({"status_code": 3}, "unknown status code", id="status-3"),
    ],
)
def test_unknown_kind_or_status_code_is_rejected_as_partial_success(
    client: Client, ingest_token: str, api: Any, fields: dict[str, Any], reason: str
) -> None:
    request = one_span_request(**fields)
    response = post_otlp(client, request, ingest_token)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 1
    assert reason in partial.error_message
    assert read_span(api, request) is None


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        pytest.param({"flags": 0x301}, {"flags": 0x301}, id="flags-remote-parent"),
        pytest.param({"flags": 2**32 - 1}, {"flags": 2**32 - 1}, id="flags-all-bits"),
        pytest.param(
            {"dropped_attributes_count": 2**32 - 1}, {"dropped_attributes_count": 2**31 - 1}, id="dropped-attributes"
        ),
        pytest.param({"dropped_events_count": 2**31}, {"dropped_events_count": 2**31 - 1}, id="dropped-events"),
        pytest.param({"dropped_links_count": 7}, {"dropped_links_count": 7}, id="dropped-links"),
    ],
)
def test_uint32_flags_and_counters_are_stored(
    client: Client, ingest_token: str, api: Any, fields: dict[str, Any], stored: dict[str, int]
) -> None:
    request = one_span_request(**fields)
    response = post_otlp(client, request, ingest_token)
    assert response.status_code == 200
    assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    span = read_span(api, request)
    assert span is not None
    assert {key: span[key] for key in stored} == stored


@pytest.mark.parametrize("key", ["http.response.status_code", "http.status_code"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e300])
def test_non_finite_or_huge_http_status_code_attribute_is_stored(
    client: Client, ingest_token: str, api: Any, key: str, value: float
) -> None:
    request = one_span_request(attribute=(key, value))
    response = post_otlp(client, request, ingest_token)
    assert response.status_code == 200
    span = read_span(api, request)
    assert span is not None
    assert key in span["attributes"]


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_times_out_in_the_store_does_not_lose_the_resource_of_later_spans(
    ingest_token: str, api: Any, settings: Any
) -> None:
    """A 503 rolls the batch back, new resource row included; later spans of that resource must still find it."""
    settings.INGEST_STATEMENT_TIMEOUT_MS = 300
    client = Client()
    resource = {"host.name": f"web-{secrets.token_hex(4)}"}
    first = otlp_request(
        [{"trace_id": secrets.token_hex(16), "span_id": "00000000000000aa", "start": now_ns()}], resource=resource
    )
    # Another session holds the trace summaries: the batch gets as far as its resource and spans, then times out.
    with psycopg.connect(**connection.get_connection_params()) as locker:
        locker.execute("LOCK TABLE traces IN ACCESS EXCLUSIVE MODE")
        response = post_otlp(client, first, ingest_token)
        locker.rollback()
    assert response.status_code == 503
    assert response["Retry-After"]

    second = otlp_request(
        [{"trace_id": secrets.token_hex(16), "span_id": "00000000000000bb", "start": now_ns()}], resource=resource
    )
    assert post_otlp(client, second, ingest_token).status_code == 200
    assert read_span(api, first) is None
    trace_id = second.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    trace = orjson.loads(api.get(f"/api/v1/traces/{trace_id}").content)
    (span,) = trace["spans"]
    assert trace["resources"][span["resource_id"]]["attributes"] == {"service.name": "checkout", **resource}
