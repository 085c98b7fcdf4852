"""Shared fixtures: a project with an ingest token, a member user with an API token, and OTLP request builders."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from rest_framework.test import APIClient

# Browser tests call the ORM from Playwright's sync API, which runs an event loop in the test thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fast_hashing_and_fresh_caches(settings: Any) -> Iterator[None]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from traces import services

    # Per-process caches hold ids of rows that a rolled-back test transaction removed.
    services._resource_ids.clear()
    services._redactors.clear()
    services._operations_written.clear()
    yield
    services._resource_ids.clear()
    services._redactors.clear()
    services._operations_written.clear()


@pytest.fixture
def project(db: None) -> Any:
    from traces.services import project_get_or_create

    return project_get_or_create(name="shop")[0]


@pytest.fixture
def ingest_token(project: Any) -> str:
    from traces.services import ingest_token_create

    return ingest_token_create(project=project, name="tests")[1]


@pytest.fixture
def member(project: Any, django_user_model: Any) -> Any:
    from traces.services import project_member_add

    user = django_user_model.objects.create_user("alice", password="alice-password-1")
    project_member_add(project=project, user=user)
    return user


@pytest.fixture
def api_token(member: Any) -> str:
    from traces.services import api_token_create

    return api_token_create(user=member)[1]


@pytest.fixture
def api(api_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    return client


def now_ns() -> int:
    return time.time_ns()


def otlp_request(
    spans: list[dict[str, Any]], *, service: str = "checkout", resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    """Build an ExportTraceServiceRequest from compact span dicts (ids as hex, times in ns)."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in {"service.name": service, **(resource or {})}.items():
        kv = rs.resource.attributes.add()
        kv.key = key
        kv.value.string_value = str(value)
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for item in spans:
        span = ss.spans.add()
        span.trace_id = bytes.fromhex(item["trace_id"]) if item.get("trace_id") is not None else b""
        span.span_id = bytes.fromhex(item["span_id"]) if item.get("span_id") is not None else b""
        if item.get("parent_span_id"):
            span.parent_span_id = bytes.fromhex(item["parent_span_id"])
        span.name = item.get("name", "op")
        span.kind = item.get("kind", Span.SPAN_KIND_SERVER)
        span.start_time_unix_nano = item["start"]
        span.end_time_unix_nano = item.get("end", item["start"] + 1_000_000)
        if item.get("error"):
            span.status.code = 2
            span.status.message = item.get("message", "boom")
        for key, value in (item.get("attributes") or {}).items():
            kv = span.attributes.add()
            kv.key = key
            if isinstance(value, bool):
                kv.value.bool_value = value
            elif isinstance(value, int):
                kv.value.int_value = value
            elif isinstance(value, float):
                kv.value.double_value = value
            else:
                kv.value.string_value = str(value)
        for event in item.get("events") or []:
            ev = span.events.add()
            ev.name = event["name"]
            ev.time_unix_nano = event["time"]
    return request


def post_otlp(
    client: Any, request: ExportTraceServiceRequest, token: str | None, *, gzip_body: bool = False, **extra: Any
) -> Any:
    body = request.SerializeToString()
    headers: dict[str, Any] = {}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if gzip_body:
        body = gzip.compress(body)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    headers.update(extra)
    return client.generic("POST", "/v1/traces", body, content_type="application/x-protobuf", **headers)


@pytest.fixture
def chromium_path() -> str:
    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run should have installed it")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


__all__ = ["now_ns", "otlp_request", "post_otlp", "settings"]
