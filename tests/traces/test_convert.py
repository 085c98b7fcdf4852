"""Decoding what clients send: OTLP/JSON and protobuf bodies, compression, Zipkin v2 and Jaeger JSON.

The unit tests pin the conversion rules; the API tests at the bottom check that what a Zipkin or Jaeger client sends
is stored and comes back from the read API with the same tree.
"""

from __future__ import annotations

import copy
import gzip
import json
import secrets
import zlib
from typing import Any

import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.conftest import now_ns, otlp_request, post_otlp
from traces.ingest import otlp
from traces.ingest.convert import jaeger_to_otlp, zipkin_to_otlp
from traces.ingest.errors import IngestError
from traces.ingest.rows import any_value, key_values

MiB = 1024 * 1024


def all_spans(request: ExportTraceServiceRequest) -> list[tuple[dict[str, Any], Span]]:
    """(resource attributes, span) for every span of a request."""
    return [
        (key_values(rs.resource.attributes), span)
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def span_named(request: ExportTraceServiceRequest, name: str) -> tuple[dict[str, Any], Span]:
    found = [(resource, span) for resource, span in all_spans(request) if span.name == name]
    assert len(found) == 1, f"expected one span named {name!r}, got {len(found)}"
    return found[0]


def raises_ingest_error(status: int = 400) -> Any:
    return pytest.raises(IngestError, check=lambda exc: exc.status == status)


# --- OTLP/JSON --------------------------------------------------------------------------------------------------

TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"
PARENT_HEX = "1d6f2ad2bde6fa9c"


def otlp_json_document(**span_overrides: Any) -> dict[str, Any]:
    """An OTLP/JSON document as the spec (and the Collector's otlphttp JSON exporter) writes it."""
    span: dict[str, Any] = {
        "traceId": TRACE_HEX,
        "spanId": SPAN_HEX,
        "parentSpanId": PARENT_HEX,
        "name": "GET /cart",
        "kind": 2,
        "startTimeUnixNano": "1700000000123456789",
        "endTimeUnixNano": "1700000000223456789",
        "attributes": [
            {"key": "http.request.method", "value": {"stringValue": "GET"}},
            {"key": "http.response.status_code", "value": {"intValue": "200"}},
            {"key": "big", "value": {"intValue": "9007199254740993"}},
            {"key": "ratio", "value": {"doubleValue": 0.25}},
            {"key": "cached", "value": {"boolValue": True}},
        ],
        "events": [{"timeUnixNano": "1700000000150000000", "name": "cache miss"}],
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}],
        "status": {"code": 2, "message": "upstream failed"},
    }
    span.update(span_overrides)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
                "scopeSpans": [{"scope": {"name": "manual", "version": "1.0"}, "spans": [span]}],
            }
        ]
    }


def test_otlp_json_hex_ids_are_hex_not_base64() -> None:
    # A 32-character hex string is also valid base64 (24 bytes): decoding it as protobuf-JSON would corrupt every ID.
    request = otlp.request_from_otlp_json(otlp_json_document())
    (_, span), *_ = all_spans(request)
    assert span.trace_id == bytes.fromhex(TRACE_HEX)
    assert len(span.trace_id) == 16
    assert span.span_id == bytes.fromhex(SPAN_HEX)
    assert len(span.span_id) == 8
    assert span.parent_span_id == bytes.fromhex(PARENT_HEX)
    assert span.links[0].trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    assert span.links[0].span_id.hex() == "b7ad6b7169203331"


def test_otlp_json_uppercase_hex_and_snake_case_field_names() -> None:
    document = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": TRACE_HEX.upper(),
                                "span_id": SPAN_HEX.upper(),
                                "parent_span_id": PARENT_HEX,
                                "name": "x",
                                "start_time_unix_nano": "1",
                                "end_time_unix_nano": "2",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    (_, span), *_ = all_spans(otlp.request_from_otlp_json(document))
    assert span.trace_id.hex() == TRACE_HEX
    assert span.span_id.hex() == SPAN_HEX
    assert span.parent_span_id.hex() == PARENT_HEX


def test_otlp_json_int64_as_strings_or_numbers_and_enums_as_ints_or_names() -> None:
    as_strings = otlp.request_from_otlp_json(otlp_json_document())
    as_numbers = otlp.request_from_otlp_json(
        otlp_json_document(
            startTimeUnixNano=1700000000123456789,
            endTimeUnixNano=1700000000223456789,
            kind="SPAN_KIND_SERVER",
            status={"code": "STATUS_CODE_ERROR", "message": "upstream failed"},
        )
    )
    for request in (as_strings, as_numbers):
        (_, span), *_ = all_spans(request)
        assert span.start_time_unix_nano == 1700000000123456789
        assert span.end_time_unix_nano == 1700000000223456789
        assert span.kind == Span.SPAN_KIND_SERVER
        assert span.status.code == Status.STATUS_CODE_ERROR
        assert span.status.message == "upstream failed"
    (_, span), *_ = all_spans(as_strings)
    attributes = key_values(span.attributes)
    # 2**53 + 1 does not survive a float: it must have been parsed from the string exactly.
    assert attributes == {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "big": 9007199254740993,
        "ratio": 0.25,
        "cached": True,
    }
    assert span.events[0].time_unix_nano == 1700000000150000000
    assert span.events[0].name == "cache miss"


def test_otlp_json_unknown_fields_are_ignored_at_every_level() -> None:
    document = otlp_json_document(fancyNewSpanField={"nested": [1, 2]})
    document["futureTopLevel"] = True
    document["resourceSpans"][0]["entityRefs"] = [{"type": "service"}]
    document["resourceSpans"][0]["scopeSpans"][0]["scope"]["somethingNew"] = "x"
    (resource, span), *_ = all_spans(otlp.request_from_otlp_json(document))
    assert resource == {"service.name": "cart"}
    assert span.name == "GET /cart"
    assert span.trace_id.hex() == TRACE_HEX


def test_otlp_json_invalid_hex_id_becomes_an_empty_id_that_ingest_rejects() -> None:
    (_, span), *_ = all_spans(otlp.request_from_otlp_json(otlp_json_document(traceId="not-hex", spanId="abc")))
    assert span.trace_id == b""
    assert span.span_id == b""


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"\xff\xfe garbage",
        b"[]",
        b'"resourceSpans"',
        b"42",
        b'{"resourceSpans": 5}',
        b'{"resourceSpans": [5]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": ["x"]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "-1"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"links": 7}]}]}]}',
    ],
)
def test_otlp_json_malformed_bodies_are_client_errors(body: bytes) -> None:
    with raises_ingest_error(400):
        otlp.request_decode(body, content_type=otlp.JSON)


def test_otlp_json_empty_body_is_an_empty_export() -> None:
    assert otlp.request_decode(b"  ", content_type=otlp.JSON) == ExportTraceServiceRequest()


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"\x0a\x05abc", b"\x0a\xff\xff\xff\xff\x0f"])
def test_protobuf_malformed_bodies_are_client_errors(body: bytes) -> None:
    with raises_ingest_error(400):
        otlp.request_decode(body, content_type=otlp.PROTOBUF)


def test_protobuf_body_decodes() -> None:
    request = otlp_request([{"trace_id": TRACE_HEX, "span_id": SPAN_HEX, "start": 5, "name": "op"}])
    decoded = otlp.request_decode(request.SerializeToString(), content_type=otlp.PROTOBUF)
    assert decoded == request


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/x-protobuf", otlp.PROTOBUF),
        ("application/protobuf", otlp.PROTOBUF),
        ("Application/X-Protobuf; charset=binary", otlp.PROTOBUF),
        ("application/json", otlp.JSON),
        ("application/json; charset=utf-8", otlp.JSON),
        ("text/plain", None),
        ("", None),
        ("application/jsonx", None),
    ],
)
def test_content_type_parse(header: str, expected: str | None) -> None:
    assert otlp.content_type_parse(header) == expected


# --- Compression -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """100 MB of zeros, gzip-compressed to about 100 KB (built in chunks, never holding the 100 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(MiB)
    parts = [compressor.compress(chunk) for _ in range(100)]
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.mark.parametrize("encoding", ["", "identity", "gzip", "x-gzip", "GZIP", "deflate"])
def test_decompress_supported_encodings(encoding: str) -> None:
    payload = b"spans " * 1000
    if encoding.lower() in ("gzip", "x-gzip"):
        body = gzip.compress(payload)
    elif encoding == "deflate":
        body = zlib.compress(payload)
    else:
        body = payload
    assert otlp.body_decompress(body, encoding=encoding, limit=10 * MiB) == payload


def test_decompress_unsupported_encoding_is_415() -> None:
    with raises_ingest_error(415):
        otlp.body_decompress(b"abc", encoding="br", limit=MiB)


def test_gzip_bomb_stops_at_the_limit_with_413(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < MiB  # small on the wire...
    with raises_ingest_error(413):  # ...but 100 MB once inflated
        otlp.body_decompress(gzip_bomb, encoding="gzip", limit=MiB)


def test_decompressed_size_exactly_at_the_limit_is_accepted_one_more_byte_is_not() -> None:
    limit = 64 * 1024
    assert len(otlp.body_decompress(gzip.compress(bytes(limit)), encoding="gzip", limit=limit)) == limit
    with raises_ingest_error(413):
        otlp.body_decompress(gzip.compress(bytes(limit + 1)), encoding="gzip", limit=limit)


def test_gzip_with_several_members_is_read_to_the_end() -> None:
    # Valid gzip (RFC 1952): what a streaming writer that closes and reopens produces. Stopping after the first
    # member would silently drop the rest of the spans.
    body = gzip.compress(b"first ") + gzip.compress(b"second ") + gzip.compress(b"third")
    assert otlp.body_decompress(body, encoding="gzip", limit=MiB) == b"first second third"
    assert gzip.decompress(body) == b"first second third"


def test_gzip_members_count_together_against_the_limit() -> None:
    body = gzip.compress(bytes(600)) + gzip.compress(bytes(600))
    with raises_ingest_error(413):
        otlp.body_decompress(body, encoding="gzip", limit=1000)
    assert len(otlp.body_decompress(body, encoding="gzip", limit=1200)) == 1200


def test_truncated_second_gzip_member_is_400() -> None:
    body = gzip.compress(b"first") + gzip.compress(secrets.token_bytes(2048))[:-20]
    with raises_ingest_error(400):
        otlp.body_decompress(body, encoding="gzip", limit=MiB)


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_truncated_gzip_is_400(cut: int) -> None:
    body = gzip.compress(secrets.token_bytes(4096))
    with raises_ingest_error(400):
        otlp.body_decompress(body[:-cut], encoding="gzip", limit=MiB)


@pytest.mark.parametrize("body", [b"", b"not gzip at all", b"\x1f\x8b\x08\x00garbage"])
def test_invalid_gzip_is_400(body: bytes) -> None:
    with raises_ingest_error(400):
        otlp.body_decompress(body, encoding="gzip", limit=MiB)


# --- Zipkin v2 --------------------------------------------------------------------------------------------------

ZIPKIN_TS = 1_700_000_000_000_000  # µs


def zipkin_trace(trace_id: str) -> list[dict[str, Any]]:
    """frontend GET / -> client call to backend -> backend server half sharing the client's span ID (B3 style)."""
    return [
        {
            "traceId": trace_id,
            "id": "0000000000000001",
            "name": "get /",
            "kind": "SERVER",
            "timestamp": ZIPKIN_TS,
            "duration": 10_000,
            "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1"},
            "tags": {"http.method": "GET", "http.path": "/"},
            "annotations": [{"timestamp": ZIPKIN_TS + 50, "value": "wr"}],
        },
        {
            "traceId": trace_id,
            "parentId": "0000000000000001",
            "id": "0000000000000002",
            "name": "get /api",
            "kind": "CLIENT",
            "timestamp": ZIPKIN_TS + 1_000,
            "duration": 5_000,
            "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1"},
            "remoteEndpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 8080},
            "tags": {"error": "connection reset"},
        },
        {
            "traceId": trace_id,
            "parentId": "0000000000000001",
            "id": "0000000000000002",
            "name": "get /api",
            "kind": "SERVER",
            "shared": True,
            "timestamp": ZIPKIN_TS + 1_500,
            "duration": 4_000,
            "localEndpoint": {"serviceName": "backend"},
            "tags": {"error": ""},
        },
        {
            "traceId": trace_id,
            "parentId": "0000000000000002",
            "id": "0000000000000003",
            "name": "select",
            "kind": "CLIENT",
            "timestamp": ZIPKIN_TS + 2_000,
            "duration": 1_000,
            "localEndpoint": {"serviceName": "backend"},
            "remoteEndpoint": {"serviceName": "postgres"},
        },
    ]


def test_zipkin_times_ids_kinds_and_endpoints() -> None:
    request = zipkin_to_otlp(zipkin_trace("463ac35c9f6413ad"))
    spans = all_spans(request)
    assert len(spans) == 4
    root_resource, root = next((r, s) for r, s in spans if s.kind == Span.SPAN_KIND_SERVER and not s.parent_span_id)
    # 64-bit trace IDs are left-padded to 128 bits; microseconds become nanoseconds.
    assert root.trace_id.hex() == "0000000000000000463ac35c9f6413ad"
    assert root.span_id.hex() == "0000000000000001"
    assert root.start_time_unix_nano == ZIPKIN_TS * 1000
    assert root.end_time_unix_nano == (ZIPKIN_TS + 10_000) * 1000
    assert root_resource == {"service.name": "frontend", "host.ip": "10.0.0.1"}
    assert key_values(root.attributes) == {"http.method": "GET", "http.path": "/"}
    assert root.status.code == Status.STATUS_CODE_UNSET
    # Annotations become events.
    assert [(e.name, e.time_unix_nano) for e in root.events] == [("wr", (ZIPKIN_TS + 50) * 1000)]

    _, client = next((r, s) for r, s in spans if s.kind == Span.SPAN_KIND_CLIENT and s.name == "get /api")
    attributes = key_values(client.attributes)
    assert attributes["peer.service"] == "backend"
    assert attributes["network.peer.address"] == "10.0.0.2"
    assert attributes["network.peer.port"] == 8080
    assert "error" not in attributes
    assert client.status.code == Status.STATUS_CODE_ERROR
    assert client.status.message == "connection reset"


def test_zipkin_spans_of_one_service_share_one_resource() -> None:
    request = zipkin_to_otlp(zipkin_trace("463ac35c9f6413ad"))
    services = [key_values(rs.resource.attributes)["service.name"] for rs in request.resource_spans]
    assert sorted(services) == ["backend", "frontend"]


def test_zipkin_shared_span_id_halves_are_stored_distinctly_server_as_child_of_client() -> None:
    spans = [span for _, span in all_spans(zipkin_to_otlp(zipkin_trace("463ac35c9f6413ad")))]
    client = next(s for s in spans if s.kind == Span.SPAN_KIND_CLIENT and s.name == "get /api")
    server = next(s for s in spans if s.kind == Span.SPAN_KIND_SERVER and s.parent_span_id)
    assert client.span_id.hex() == "0000000000000002"
    assert client.parent_span_id.hex() == "0000000000000001"
    assert len(server.span_id) == 8
    assert server.span_id not in (client.span_id, bytes(8))
    assert server.parent_span_id == client.span_id
    # An empty error tag still marks the span as failed, without a message.
    assert server.status.code == Status.STATUS_CODE_ERROR
    assert server.status.message == ""
    # The derived ID is stable, so a re-sent batch is recognised as a duplicate.
    again = [span for _, span in all_spans(zipkin_to_otlp(zipkin_trace("463ac35c9f6413ad")))]
    assert server.span_id in {s.span_id for s in again}


def test_zipkin_children_of_a_shared_server_half_hang_under_it() -> None:
    """Brave's default B3 join, three services deep: frontend -> backend -> ledger, every RPC a shared span ID."""

    def span(span_id: str, parent: str | None, kind: str, service: str, name: str, shared: bool = False) -> Any:
        item: dict[str, Any] = {
            "traceId": TRACE_HEX,
            "id": span_id,
            "kind": kind,
            "name": name,
            "timestamp": ZIPKIN_TS,
            "duration": 10,
            "localEndpoint": {"serviceName": service},
        }
        if parent:
            item["parentId"] = parent
        if shared:
            item["shared"] = True
        return item

    document = [
        span("00000000000000a1", None, "SERVER", "frontend", "get /"),
        span("00000000000000b2", "00000000000000a1", "CLIENT", "frontend", "get /api"),
        span("00000000000000b2", "00000000000000a1", "SERVER", "backend", "get /api", shared=True),
        span("00000000000000c3", "00000000000000b2", "CLIENT", "backend", "select"),  # backend's own work
        span("00000000000000d4", "00000000000000b2", "CLIENT", "backend", "post /ledger"),
        span("00000000000000d4", "00000000000000b2", "SERVER", "ledger", "post /ledger", shared=True),
        span("00000000000000e5", "00000000000000d4", "INTERNAL", "ledger", "write"),
    ]
    spans = {(r["service.name"], s.name, s.kind): s for r, s in all_spans(zipkin_to_otlp(document))}
    backend_server = spans[("backend", "get /api", Span.SPAN_KIND_SERVER)]
    ledger_server = spans[("ledger", "post /ledger", Span.SPAN_KIND_SERVER)]
    assert backend_server.parent_span_id.hex() == "00000000000000b2"  # under the frontend's client half
    assert spans[("backend", "select", Span.SPAN_KIND_CLIENT)].parent_span_id == backend_server.span_id
    ledger_client = spans[("backend", "post /ledger", Span.SPAN_KIND_CLIENT)]
    assert ledger_client.parent_span_id == backend_server.span_id
    assert ledger_server.parent_span_id == ledger_client.span_id
    assert spans[("ledger", "write", Span.SPAN_KIND_INTERNAL)].parent_span_id == ledger_server.span_id
    assert len({s.span_id for s in spans.values()}) == 7


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("CLIENT", Span.SPAN_KIND_CLIENT),
        ("SERVER", Span.SPAN_KIND_SERVER),
        ("PRODUCER", Span.SPAN_KIND_PRODUCER),
        ("CONSUMER", Span.SPAN_KIND_CONSUMER),
        (None, Span.SPAN_KIND_INTERNAL),
        ("SIDEWAYS", Span.SPAN_KIND_INTERNAL),
    ],
)
def test_zipkin_kind_mapping(kind: str | None, expected: int) -> None:
    item: dict[str, Any] = {"traceId": TRACE_HEX, "id": SPAN_HEX, "timestamp": ZIPKIN_TS}
    if kind is not None:
        item["kind"] = kind
    (_, span), *_ = all_spans(zipkin_to_otlp([item]))
    assert span.kind == expected


@pytest.mark.parametrize(("value", "code"), [("ERROR", Status.STATUS_CODE_ERROR), ("OK", Status.STATUS_CODE_OK)])
def test_zipkin_otel_status_code_tag(value: str, code: int) -> None:
    item = {"traceId": TRACE_HEX, "id": SPAN_HEX, "timestamp": ZIPKIN_TS, "tags": {"otel.status_code": value}}
    (_, span), *_ = all_spans(zipkin_to_otlp([item]))
    assert span.status.code == code
    assert "otel.status_code" not in key_values(span.attributes)


def test_zipkin_scope_tags_become_the_instrumentation_scope() -> None:
    item = {
        "traceId": TRACE_HEX,
        "id": SPAN_HEX,
        "timestamp": ZIPKIN_TS,
        "tags": {"otel.scope.name": "io.opentelemetry.jdbc", "otel.scope.version": "2.1", "db.system": "postgresql"},
    }
    request = zipkin_to_otlp([item])
    scope = request.resource_spans[0].scope_spans[0].scope
    assert (scope.name, scope.version) == ("io.opentelemetry.jdbc", "2.1")
    assert key_values(request.resource_spans[0].scope_spans[0].spans[0].attributes) == {"db.system": "postgresql"}


def deeply_nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "document",
    [
        {"traceId": TRACE_HEX},
        [1, 2],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "localEndpoint": "frontend"}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "tags": ["a"]}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "annotations": 5}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "annotations": ["wr"]}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "timestamp": "yesterday"}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "timestamp": -5}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "timestamp": 1e300}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "duration": True}],
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "tags": {"deep": deeply_nested(300)}}],
    ],
)
def test_zipkin_malformed_documents_are_client_errors(document: Any) -> None:
    with raises_ingest_error(400):
        zipkin_to_otlp(document)


def test_zipkin_invalid_ids_yield_empty_ids_for_ingest_to_reject() -> None:
    item = {"traceId": "x" * 32, "id": "0" * 17, "timestamp": ZIPKIN_TS}
    (_, span), *_ = all_spans(zipkin_to_otlp([item]))
    assert span.trace_id == b""
    assert span.span_id == b""


# --- Jaeger JSON ------------------------------------------------------------------------------------------------

JAEGER_TS = 1_700_000_000_000_000  # µs


def jaeger_trace(trace_id: str) -> dict[str, Any]:
    """A trace as Jaeger UI's "Download JSON" writes it (one element of `data`)."""
    return {
        "traceID": trace_id,
        "spans": [
            {
                "traceID": trace_id,
                "spanID": "00000000000000a1",
                "operationName": "HTTP GET /dispatch",
                "references": [],
                "startTime": JAEGER_TS,
                "duration": 20_000,
                "tags": [
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "http.status_code", "type": "int64", "value": 200},
                    {"key": "sampler.param", "type": "bool", "value": True},
                ],
                "logs": [],
                "processID": "p1",
            },
            {
                "traceID": trace_id,
                "spanID": "00000000000000b2",
                "operationName": "SQL SELECT",
                "references": [
                    {"refType": "CHILD_OF", "traceID": trace_id, "spanID": "00000000000000a1"},
                    {"refType": "FOLLOWS_FROM", "traceID": trace_id, "spanID": "00000000000000c3"},
                    {
                        "refType": "CHILD_OF",
                        "traceID": "0000000000000000000000000000beef",
                        "spanID": "000000000000dead",
                    },
                ],
                "startTime": JAEGER_TS + 1_000,
                "duration": 8_000,
                "tags": [
                    {"key": "span.kind", "type": "string", "value": "client"},
                    {"key": "error", "type": "bool", "value": True},
                    {"key": "rows", "type": "int64", "value": "9007199254740993"},
                    {"key": "ratio", "type": "float64", "value": 0.5},
                    {"key": "cached", "type": "bool", "value": "false"},
                    {"key": "db.statement", "type": "string", "value": "SELECT 1"},
                ],
                "logs": [
                    {
                        "timestamp": JAEGER_TS + 2_000,
                        "fields": [
                            {"key": "event", "type": "string", "value": "retry"},
                            {"key": "attempt", "type": "int64", "value": 2},
                        ],
                    },
                    {"timestamp": JAEGER_TS + 3_000, "fields": [{"key": "message", "value": "no event field"}]},
                ],
                "processID": "p2",
            },
            {
                "traceID": trace_id,
                "spanID": "00000000000000c3",
                "operationName": "cache warm",
                "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": "00000000000000a1"}],
                "startTime": JAEGER_TS + 500,
                "duration": 100,
                "tags": [],
                "processID": "p2",
            },
        ],
        "processes": {
            "p1": {"serviceName": "frontend", "tags": [{"key": "hostname", "type": "string", "value": "web-1"}]},
            "p2": {
                "serviceName": "mysql",
                "tags": [
                    {"key": "ip", "type": "string", "value": "10.0.0.3"},
                    {"key": "client-uuid", "type": "string", "value": "6f2c"},
                ],
            },
        },
        "warnings": None,
    }


JAEGER_TRACE_ID = "00000000000000000000000000c0ffee"


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda trace: {"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": None}, id="data"),
        pytest.param(lambda trace: trace, id="bare-trace"),
        pytest.param(lambda trace: [trace], id="list"),
    ],
)
def test_jaeger_document_shapes_convert_the_same(wrap: Any) -> None:
    request = jaeger_to_otlp(wrap(jaeger_trace(JAEGER_TRACE_ID)))
    assert sorted(span.name for _, span in all_spans(request)) == ["HTTP GET /dispatch", "SQL SELECT", "cache warm"]
    assert request == jaeger_to_otlp({"data": [jaeger_trace(JAEGER_TRACE_ID)]})


def test_jaeger_processes_become_resources() -> None:
    request = jaeger_to_otlp({"data": [jaeger_trace(JAEGER_TRACE_ID)]})
    frontend, _ = span_named(request, "HTTP GET /dispatch")
    mysql, _ = span_named(request, "SQL SELECT")
    assert frontend == {"service.name": "frontend", "hostname": "web-1"}
    assert mysql == {"service.name": "mysql", "ip": "10.0.0.3", "client-uuid": "6f2c"}
    assert len(request.resource_spans) == 2  # both mysql spans share one resource


def test_jaeger_references_child_of_is_parent_others_are_links() -> None:
    request = jaeger_to_otlp({"data": [jaeger_trace(JAEGER_TRACE_ID)]})
    _, root = span_named(request, "HTTP GET /dispatch")
    _, sql = span_named(request, "SQL SELECT")
    assert root.trace_id.hex() == JAEGER_TRACE_ID
    assert root.parent_span_id == b""
    assert sql.parent_span_id.hex() == "00000000000000a1"
    links = [(link.trace_id.hex(), link.span_id.hex(), key_values(link.attributes)) for link in sql.links]
    assert links == [
        (JAEGER_TRACE_ID, "00000000000000c3", {"opentracing.ref_type": "follows_from"}),
        ("0000000000000000000000000000beef", "000000000000dead", {"opentracing.ref_type": "child_of"}),
    ]


def test_jaeger_child_of_another_trace_is_not_a_parent() -> None:
    trace = jaeger_trace(JAEGER_TRACE_ID)
    trace["spans"][2]["references"][0]["traceID"] = "00000000000000000000000000000abc"
    _, span = span_named(jaeger_to_otlp(trace), "cache warm")
    assert span.parent_span_id == b""
    assert [link.trace_id.hex() for link in span.links] == ["00000000000000000000000000000abc"]


def test_jaeger_span_kind_error_and_typed_tags() -> None:
    request = jaeger_to_otlp({"data": [jaeger_trace(JAEGER_TRACE_ID)]})
    _, root = span_named(request, "HTTP GET /dispatch")
    _, sql = span_named(request, "SQL SELECT")
    _, cache = span_named(request, "cache warm")
    assert root.kind == Span.SPAN_KIND_SERVER
    assert sql.kind == Span.SPAN_KIND_CLIENT
    assert cache.kind == Span.SPAN_KIND_INTERNAL  # no span.kind tag
    assert root.status.code == Status.STATUS_CODE_UNSET
    assert sql.status.code == Status.STATUS_CODE_ERROR
    assert key_values(root.attributes) == {"http.status_code": 200, "sampler.param": True}
    assert key_values(sql.attributes) == {
        "rows": 9007199254740993,
        "ratio": 0.5,
        "cached": False,
        "db.statement": "SELECT 1",
    }
    kinds = {kv.key: kv.value.WhichOneof("value") for kv in sql.attributes}
    assert kinds == {
        "rows": "int_value",
        "ratio": "double_value",
        "cached": "bool_value",
        "db.statement": "string_value",
    }
    assert root.start_time_unix_nano == JAEGER_TS * 1000
    assert root.end_time_unix_nano == (JAEGER_TS + 20_000) * 1000


@pytest.mark.parametrize(("value", "failed"), [(True, True), ("true", True), (False, False), ("false", False)])
def test_jaeger_error_tag(value: Any, failed: bool) -> None:
    trace = jaeger_trace(JAEGER_TRACE_ID)
    trace["spans"][2]["tags"] = [{"key": "error", "type": "bool", "value": value}]
    _, span = span_named(jaeger_to_otlp(trace), "cache warm")
    assert (span.status.code == Status.STATUS_CODE_ERROR) is failed
    assert "error" not in key_values(span.attributes)


def test_jaeger_logs_become_events() -> None:
    _, sql = span_named(jaeger_to_otlp({"data": [jaeger_trace(JAEGER_TRACE_ID)]}), "SQL SELECT")
    events = [(e.name, e.time_unix_nano, key_values(e.attributes)) for e in sql.events]
    assert events == [
        ("retry", (JAEGER_TS + 2_000) * 1000, {"attempt": 2}),
        ("log", (JAEGER_TS + 3_000) * 1000, {"message": "no event field"}),
    ]


def test_jaeger_embedded_process_and_64_bit_trace_id() -> None:
    trace = {
        "spans": [
            {
                "traceID": "463ac35c9f6413ad",
                "spanID": "0000000000000001",
                "operationName": "op",
                "startTime": JAEGER_TS,
                "duration": 1,
                "process": {"serviceName": "embedded", "tags": []},
            }
        ]
    }
    resource, span = span_named(jaeger_to_otlp(trace), "op")
    assert resource == {"service.name": "embedded"}
    assert span.trace_id.hex() == "0000000000000000463ac35c9f6413ad"


def jaeger_with(**span_fields: Any) -> dict[str, Any]:
    span = {"traceID": TRACE_HEX, "spanID": SPAN_HEX, "operationName": "op", "startTime": JAEGER_TS, "duration": 1}
    span.update(span_fields)
    return {"data": [{"spans": [span], "processes": {}}]}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"hello": "world"}, id="not-a-trace"),
        pytest.param("trace", id="string"),
        pytest.param({"data": [{"traceID": TRACE_HEX}]}, id="trace-without-spans"),
        pytest.param({"data": [{"spans": [], "processes": ["p1"]}]}, id="processes-array"),
        pytest.param({"data": [{"spans": [5]}]}, id="span-not-object"),
        pytest.param(jaeger_with(process="frontend"), id="process-string"),
        pytest.param(jaeger_with(tags=5), id="tags-number"),
        pytest.param(jaeger_with(references={"refType": "CHILD_OF"}), id="references-object"),
        pytest.param(jaeger_with(logs=3), id="logs-number"),
        pytest.param(jaeger_with(logs=[{"timestamp": JAEGER_TS, "fields": 3}]), id="log-fields-number"),
        pytest.param(jaeger_with(flags="sampled"), id="flags-string"),
        pytest.param(jaeger_with(startTime="now"), id="start-string"),
        pytest.param(jaeger_with(duration=-1), id="negative-duration"),
    ],
)
def test_jaeger_malformed_documents_are_client_errors(document: Any) -> None:
    with raises_ingest_error(400):
        jaeger_to_otlp(document)


def test_jaeger_span_with_unknown_or_odd_process_id_is_unknown_service() -> None:
    for process_id in ("p9", ["p1"], None):
        resource, _ = span_named(jaeger_to_otlp(jaeger_with(processID=process_id)), "op")
        assert resource == {"service.name": "unknown_service"}


def test_jaeger_tag_with_wrong_type_declaration_is_kept_as_text() -> None:
    trace = jaeger_with(tags=[{"key": "n", "type": "int64", "value": "many"}, {"key": "f", "type": "float64"}])
    _, span = span_named(jaeger_to_otlp(trace), "op")
    assert key_values(span.attributes) == {"n": "many", "f": "None"}


# --- Through the HTTP endpoints ---------------------------------------------------------------------------------


def fresh_trace_id() -> str:
    return secrets.token_hex(16)


def now_micros() -> int:
    return now_ns() // 1000


def post_json(client: Any, path: str, document: Any, token: str | None, **headers: Any) -> Any:
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return client.generic("POST", path, body, content_type="application/json", **headers)


def fetch_trace(api: Any, trace_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/traces/{trace_id}")
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)


def spans_by_id(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["span_id"]: span for span in trace["spans"]}


@pytest.fixture
def zipkin_now() -> list[dict[str, Any]]:
    """The Zipkin example trace shifted to now, with a fresh 128-bit trace ID."""
    trace_id = fresh_trace_id()
    spans = copy.deepcopy(zipkin_trace(trace_id))
    shift = now_micros() - ZIPKIN_TS
    for span in spans:
        span["timestamp"] += shift
        for annotation in span.get("annotations", []):
            annotation["timestamp"] += shift
    return spans


def test_zipkin_endpoint_accepts_with_202_and_the_trace_reads_back_with_the_same_tree(
    client: Any, ingest_token: str, api: Any, zipkin_now: list[dict[str, Any]]
) -> None:
    trace_id = zipkin_now[0]["traceId"]
    response = post_json(client, "/api/v2/spans", zipkin_now, ingest_token)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted_spans"] == 4
    assert body["rejected_spans"] == 0
    assert body["trace_ids"] == [trace_id]

    trace = fetch_trace(api, trace_id)
    assert trace["trace_id"] == trace_id
    assert trace["span_count"] == 4
    assert trace["error_count"] == 2
    assert trace["services"] == ["backend", "frontend"]
    assert trace["root_service"] == "frontend"
    assert trace["root_name"] == "get /"
    spans = spans_by_id(trace)
    root, client_half = spans["0000000000000001"], spans["0000000000000002"]
    select = spans["0000000000000003"]
    (server_half,) = [
        s for s in spans.values() if s["span_id"] not in ("0000000000000001", "0000000000000002", "0000000000000003")
    ]
    assert root["parent_span_id"] is None
    assert client_half["parent_span_id"] == "0000000000000001"
    assert server_half["parent_span_id"] == "0000000000000002"
    assert select["parent_span_id"] == server_half["span_id"]  # the backend's own work hangs under its server half
    assert select["attributes"]["peer.service"] == "postgres"
    assert (root["kind"], client_half["kind"], server_half["kind"]) == ("SERVER", "CLIENT", "SERVER")
    assert (root["service_name"], client_half["service_name"], server_half["service_name"]) == (
        "frontend",
        "frontend",
        "backend",
    )
    assert root["start_ns"] == str(zipkin_now[0]["timestamp"] * 1000)
    assert root["duration_ns"] == 10_000_000
    assert root["events"] == [{"time_ns": str(zipkin_now[0]["annotations"][0]["timestamp"] * 1000), "name": "wr"}]
    assert client_half["status_code"] == "ERROR"
    assert client_half["status_message"] == "connection reset"
    assert client_half["attributes"]["peer.service"] == "backend"


def test_zipkin_64_bit_trace_id_reads_back_by_its_short_and_long_form(
    client: Any, ingest_token: str, api: Any, zipkin_now: list[dict[str, Any]]
) -> None:
    short = secrets.token_hex(8)
    for span in zipkin_now:
        span["traceId"] = short
    response = post_json(client, "/api/v2/spans", zipkin_now, ingest_token)
    assert response.status_code == 202, response.content
    assert response.json()["trace_ids"] == [short.rjust(32, "0")]
    assert fetch_trace(api, short)["span_count"] == 4
    assert fetch_trace(api, short.rjust(32, "0"))["span_count"] == 4


def test_zipkin_resent_batch_is_stored_once(
    client: Any, ingest_token: str, api: Any, zipkin_now: list[dict[str, Any]]
) -> None:
    assert post_json(client, "/api/v2/spans", zipkin_now, ingest_token).status_code == 202
    second = post_json(client, "/api/v2/spans", zipkin_now, ingest_token).json()
    assert second["duplicate_spans"] == 4
    assert fetch_trace(api, zipkin_now[0]["traceId"])["span_count"] == 4


def jaeger_now() -> dict[str, Any]:
    trace_id = fresh_trace_id()
    trace = jaeger_trace(trace_id)
    shift = now_micros() - JAEGER_TS
    for span in trace["spans"]:
        span["startTime"] += shift
        for log in span.get("logs") or []:
            log["timestamp"] += shift
    return trace


def test_jaeger_import_returns_200_with_trace_ids_and_the_trace_reads_back(
    client: Any, ingest_token: str, api: Any
) -> None:
    first, second = jaeger_now(), jaeger_now()
    response = post_json(client, "/api/v1/import/jaeger", {"data": [first, second]}, ingest_token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted_spans"] == 6
    assert body["trace_ids"] == sorted([first["traceID"], second["traceID"]])

    trace = fetch_trace(api, first["traceID"])
    assert trace["services"] == ["frontend", "mysql"]
    assert trace["root_name"] == "HTTP GET /dispatch"
    spans = spans_by_id(trace)
    assert set(spans) == {"00000000000000a1", "00000000000000b2", "00000000000000c3"}
    assert spans["00000000000000a1"]["parent_span_id"] is None
    assert spans["00000000000000b2"]["parent_span_id"] == "00000000000000a1"
    assert spans["00000000000000c3"]["parent_span_id"] == "00000000000000a1"
    sql = spans["00000000000000b2"]
    assert sql["kind"] == "CLIENT"
    assert sql["status_code"] == "ERROR"
    assert sql["attributes"] == {"rows": 9007199254740993, "ratio": 0.5, "cached": False, "db.statement": "SELECT 1"}
    assert [link["span_id"] for link in sql["links"]] == ["00000000000000c3", "000000000000dead"]
    assert [event["name"] for event in sql["events"]] == ["retry", "log"]
    assert trace["resources"][sql["resource_id"]]["attributes"] == {
        "service.name": "mysql",
        "ip": "10.0.0.3",
        "client-uuid": "6f2c",
    }


@pytest.mark.parametrize("path", ["/api/v2/spans", "/api/v1/import/jaeger"])
@pytest.mark.parametrize("body", [b"{", b"[1,", b"\xff\xfe", b"null x"])
def test_json_endpoints_bad_json_is_400_with_an_error_message(
    client: Any, ingest_token: str, path: str, body: bytes
) -> None:
    response = post_json(client, path, body, ingest_token)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "not valid JSON" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "document"),
    [
        ("/api/v2/spans", {"traceId": "abc"}),
        ("/api/v2/spans", [{"traceId": TRACE_HEX, "id": SPAN_HEX, "annotations": 5}]),
        ("/api/v1/import/jaeger", {"hello": "world"}),
        ("/api/v1/import/jaeger", jaeger_with(process="frontend")),
    ],
)
def test_json_endpoints_wrong_shape_is_400(client: Any, ingest_token: str, path: str, document: Any) -> None:
    response = post_json(client, path, document, ingest_token)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize("path", ["/api/v2/spans", "/api/v1/import/jaeger"])
@pytest.mark.parametrize("token", [None, "tui_ingest_not-a-real-token", "somebody-elses-token"])
def test_json_endpoints_without_a_valid_token_are_401(client: Any, db: None, path: str, token: str | None) -> None:
    response = post_json(client, path, [], token)
    assert response.status_code == 401
    assert "ingest token" in response.json()["error"]


def test_json_endpoints_refuse_an_api_token(client: Any, api_token: str) -> None:
    response = post_json(client, "/api/v2/spans", [], api_token)
    assert response.status_code == 401


def test_json_endpoints_refuse_other_content_types(client: Any, ingest_token: str) -> None:
    response = client.generic(
        "POST", "/api/v2/spans", b"[]", content_type="text/plain", HTTP_AUTHORIZATION=f"Bearer {ingest_token}"
    )
    assert response.status_code == 415
    assert response.json()["error"]


def test_json_endpoints_accept_gzip(client: Any, ingest_token: str, api: Any, zipkin_now: list[dict[str, Any]]) -> None:
    body = gzip.compress(json.dumps(zipkin_now).encode())
    response = post_json(client, "/api/v2/spans", body, ingest_token, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 202, response.content
    assert fetch_trace(api, zipkin_now[0]["traceId"])["span_count"] == 4


def test_json_endpoints_only_take_post(client: Any, db: None) -> None:
    response = client.get("/api/v2/spans")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_otlp_json_through_the_endpoint_keeps_hex_ids(client: Any, ingest_token: str, api: Any) -> None:
    trace_id, start = fresh_trace_id(), now_ns()
    document = otlp_json_document(
        traceId=trace_id, startTimeUnixNano=str(start), endTimeUnixNano=str(start + 5_000_000), parentSpanId=""
    )
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["events"][0]["timeUnixNano"] = str(start + 1)
    response = post_json(client, "/v1/traces", document, ingest_token)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    (span,) = fetch_trace(api, trace_id)["spans"]
    assert span["span_id"] == SPAN_HEX
    assert span["parent_span_id"] is None
    assert span["start_ns"] == str(start)
    assert span["duration_ns"] == 5_000_000
    assert span["attributes"]["big"] == 9007199254740993
    assert span["links"][0]["span_id"] == "b7ad6b7169203331"


def test_otlp_json_partial_success_reports_rejected_spans(client: Any, ingest_token: str) -> None:
    good = otlp_json_document(traceId=fresh_trace_id(), startTimeUnixNano=str(now_ns()), endTimeUnixNano=str(now_ns()))
    bad = otlp_json_document(traceId="00" * 16)
    good["resourceSpans"][0]["scopeSpans"][0]["spans"] += bad["resourceSpans"][0]["scopeSpans"][0]["spans"]
    response = post_json(client, "/v1/traces", good, ingest_token)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "trace_id" in partial["errorMessage"]


def test_otlp_gzip_bomb_through_the_endpoint_is_413(
    client: Any, ingest_token: str, settings: Any, gzip_bomb: bytes
) -> None:
    settings.INGEST_MAX_BODY_BYTES = 4 * MiB
    response = client.generic(
        "POST",
        "/v1/traces",
        gzip_bomb,
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {ingest_token}",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(response.content)
    assert "limit" in status.message


def test_otlp_truncated_gzip_through_the_endpoint_is_400(client: Any, ingest_token: str) -> None:
    request = otlp_request([{"trace_id": fresh_trace_id(), "span_id": SPAN_HEX, "start": now_ns()}])
    body = gzip.compress(request.SerializeToString())[:-12]
    response = client.generic(
        "POST",
        "/v1/traces",
        body,
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {ingest_token}",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 400
    assert "truncated" in status_pb2.Status.FromString(response.content).message


def test_otlp_declared_body_over_the_limit_is_413(client: Any, ingest_token: str, settings: Any) -> None:
    settings.INGEST_MAX_BODY_BYTES = 1024
    request = otlp_request(
        [{"trace_id": fresh_trace_id(), "span_id": SPAN_HEX, "start": now_ns(), "attributes": {"pad": "x" * 2000}}]
    )
    response = post_otlp(client, request, ingest_token)
    assert response.status_code == 413


def test_otlp_multi_member_gzip_through_the_endpoint_stores_every_span(
    client: Any, ingest_token: str, api: Any
) -> None:
    trace_id = fresh_trace_id()
    first = otlp_request([{"trace_id": trace_id, "span_id": "00000000000000a1", "start": now_ns(), "name": "one"}])
    second = otlp_request([{"trace_id": trace_id, "span_id": "00000000000000a2", "start": now_ns(), "name": "two"}])
    # Concatenated protobuf messages merge, so two gzip members of two requests are one valid request.
    body = gzip.compress(first.SerializeToString()) + gzip.compress(second.SerializeToString())
    response = client.generic(
        "POST",
        "/v1/traces",
        body,
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {ingest_token}",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200
    assert sorted(span["name"] for span in fetch_trace(api, trace_id)["spans"]) == ["one", "two"]


def test_otlp_gzip_protobuf_through_the_endpoint(client: Any, ingest_token: str, api: Any) -> None:
    trace_id = fresh_trace_id()
    request = otlp_request([{"trace_id": trace_id, "span_id": SPAN_HEX, "start": now_ns(), "name": "zipped"}])
    response = post_otlp(client, request, ingest_token, gzip_body=True)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    assert [span["name"] for span in fetch_trace(api, trace_id)["spans"]] == ["zipped"]


def test_any_value_decodes_every_kind() -> None:
    request = zipkin_to_otlp(
        [{"traceId": TRACE_HEX, "id": SPAN_HEX, "tags": {"list": [1, "a", True, 1.5, None], "map": {"k": {"j": 2}}}}]
    )
    (_, span), *_ = all_spans(request)
    values = {kv.key: any_value(kv.value) for kv in span.attributes}
    assert values == {"list": [1, "a", True, 1.5, ""], "map": {"k": {"j": 2}}}
