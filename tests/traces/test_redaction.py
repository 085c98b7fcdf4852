"""Redaction: secrets never reach the store, while ordinary telemetry that merely looks similar survives.

Unit tests drive `Redactor` directly; the rest send spans through `POST /v1/traces` and read them back through the
API, since what matters is what ends up stored.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import now_ns, otlp_request, post_otlp
from traces.ingest.redaction import MASK, Redactor, Rule
from traces.models import ProjectIngestSettings, RedactionCount, RedactionRule

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
VISA = "4111111111111111"  # Luhn-valid test card
ORDER_ID = "1234567812345678"  # 16 digits, fails the Luhn check


def defaults() -> Redactor:
    return Redactor(rules=[], hash_key=b"k")


# --- Keys ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db.password",
        "PASSWORD",
        "http.request.header.authorization",
        "http.request.header.proxy-authorization",
        "cookie",
        "http.response.header.set-cookie",
        "api_key",
        "apikey",
        "x-api-key",
        "http.request.header.x-api-key",
        "client_secret",
        "oauth.client-secret",
        "access_token",
        "refresh_token",
        "aws.secret_access_key",
        "private_key",
        "session_id",
        "token",
        "auth.token",
        "credentials",
    ],
)
def test_default_rules_redact_values_of_secret_keys(key: str) -> None:
    redactor = defaults()
    assert redactor.attributes({key: "hunter2-correct-horse"}) == {key: MASK}
    assert redactor.counts == {"default: secret key": 1}


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "tokenizer.name",
        "http.route",
        "http.request.method",
        "passwords_checked_total",
        "db.statement",
        "keyspace",
        "monkey",
        "secretary.name",
    ],
)
def test_default_rules_leave_lookalike_keys_alone(key: str) -> None:
    redactor = defaults()
    assert redactor.attributes({key: "some value"}) == {key: "some value"}
    assert not redactor.counts


def test_default_rules_keep_llm_token_counts_and_token_types() -> None:
    # OpenInference's LLM usage numbers: blanking them would break every token-usage chart.
    redactor = defaults()
    attributes = {"llm.token_count.prompt": 812, "llm.token_count.completion": 95, "oauth.token_type": "Bearer"}
    assert redactor.attributes(dict(attributes)) == attributes
    assert redactor.attributes({"llm.token": "sk-live-123", "token.value": "x"}) == {
        "llm.token": MASK,
        "token.value": MASK,
    }


def test_secret_key_with_non_string_value_is_replaced_too() -> None:
    assert defaults().attributes({"password": 123456, "api_key": ["a", "b"]}) == {"password": MASK, "api_key": MASK}


def test_secret_keys_inside_nested_maps_are_redacted() -> None:
    redactor = defaults()
    value = {"headers": {"authorization": "Basic dXNlcjpwYXNz", "accept": "*/*"}, "tries": [1, 2]}
    assert redactor.attributes({"request": value}) == {
        "request": {"headers": {"authorization": MASK, "accept": "*/*"}, "tries": [1, 2]}
    }


# --- Values ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VISA, MASK),
        ("paid with 4111 1111 1111 1111 today", f"paid with {MASK} today"),
        ("card=5555-5555-5555-4444;", f"card={MASK};"),
        ("amex 378282246310005", f"amex {MASK}"),
        (ORDER_ID, ORDER_ID),
        (f"order {ORDER_ID} shipped", f"order {ORDER_ID} shipped"),
        ("call 555 1234", "call 555 1234"),
        ("Bearer abc.def", f"Bearer {MASK}"),
        ("authorization: bearer s3cr3t-T0ken==", f"authorization: Bearer {MASK}"),
        (f"token={JWT} end", f"token={MASK} end"),
        ("eyJ-only", "eyJ-only"),
    ],
)
def test_default_value_rules(value: str, expected: str) -> None:
    assert defaults().attributes({"message": value}) == {"message": expected}


def test_value_rules_apply_inside_arrays_and_count_each_kind() -> None:
    redactor = defaults()
    attributes = redactor.attributes({"log": [f"card {VISA}", "Bearer abc.def", JWT, ORDER_ID]})
    assert attributes == {"log": [f"card {MASK}", f"Bearer {MASK}", MASK, ORDER_ID]}
    assert redactor.counts == {"default: card number": 1, "default: bearer token": 1, "default: jwt": 1}


def test_the_same_clean_value_stays_clean_and_a_secret_is_redacted_every_time() -> None:
    redactor = defaults()
    for _ in range(3):
        assert redactor.attributes({"order": ORDER_ID, "card": f"card {VISA}"}) == {
            "order": ORDER_ID,
            "card": f"card {MASK}",
        }
    assert redactor.counts["default: card number"] == 3


def test_defaults_off_redacts_nothing() -> None:
    redactor = Redactor(rules=[], use_defaults=False)
    attributes = {"password": "hunter2", "card": VISA, "auth": "Bearer abc.def"}
    assert redactor.attributes(dict(attributes)) == attributes
    assert not redactor.active


def test_hash_action_is_stable_per_key_and_differs_between_keys() -> None:
    rule = Rule(name="emails", target="value", pattern=re.compile(r"[\w.]+@[\w.]+"), action="hash")
    first = Redactor(rules=[rule], hash_key=b"project-1").text("mail ann@example.com")
    again = Redactor(rules=[rule], hash_key=b"project-1").text("mail ann@example.com")
    other_value = Redactor(rules=[rule], hash_key=b"project-1").text("mail bob@example.com")
    other_key = Redactor(rules=[rule], hash_key=b"project-2").text("mail ann@example.com")
    assert re.fullmatch(r"mail sha256:[0-9a-f]{16}", first)
    assert first == again
    assert first != other_value
    assert first != other_key
    assert "ann" not in first


# --- Through ingest --------------------------------------------------------------------------------------------


def request_with_secrets(trace_id: str, *, status_message: str = "") -> ExportTraceServiceRequest:
    """One span with secrets in span, resource, event and link attributes and in the status message."""
    start = now_ns()
    request = otlp_request(
        [
            {
                "trace_id": trace_id,
                "span_id": "00000000000000aa",
                "start": start,
                "name": "POST /checkout",
                "attributes": {
                    "http.request.header.authorization": "Bearer abc.def",
                    "db.password": "hunter2",
                    "payment.note": f"card {VISA}",
                    "order.id": ORDER_ID,
                    "gen_ai.usage.input_tokens": 812,
                    "http.route": "/checkout",
                    "user.email": "ann@example.com",
                },
            }
        ],
        service="checkout",
        resource={"deployment.api_key": "k-123", "host.name": "web-1"},
    )
    span = request.resource_spans[0].scope_spans[0].spans[0]
    event = span.events.add()
    event.name = "exception"
    event.time_unix_nano = start + 1
    for key, value in {"exception.message": f"declined {VISA}", "cookie": "sid=abc", "attempt": "2"}.items():
        kv = event.attributes.add()
        kv.key = key
        kv.value.string_value = value
    link = span.links.add()
    link.trace_id = bytes.fromhex(secrets.token_hex(16))
    link.span_id = bytes.fromhex("00000000000000bb")
    kv = link.attributes.add()
    kv.key = "access_token"
    kv.value.string_value = "at-123"
    if status_message:
        span.status.code = 2
        span.status.message = status_message
    return request


def ingest_and_read(client: Any, api: Any, token: str, request: ExportTraceServiceRequest) -> dict[str, Any]:
    response = post_otlp(client, request, token)
    assert response.status_code == 200, response.content
    trace_id = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    read = api.get(f"/api/v1/traces/{trace_id}")
    assert read.status_code == 200, read.content
    return orjson.loads(read.content)


def only_span(trace: dict[str, Any]) -> dict[str, Any]:
    (span,) = trace["spans"]
    return span


def redaction_counts(project: Any) -> dict[str, int]:
    return dict(RedactionCount.objects.filter(project=project).values_list("rule", "count"))


def test_defaults_redact_span_resource_event_link_attributes_and_status_message(
    client: Any, api: Any, ingest_token: str, project: Any
) -> None:
    trace = ingest_and_read(
        client,
        api,
        ingest_token,
        request_with_secrets(secrets.token_hex(16), status_message=f"charge failed for {VISA} (Bearer xyz.123)"),
    )
    span = only_span(trace)
    assert span["attributes"] == {
        "http.request.header.authorization": MASK,
        "db.password": MASK,
        "payment.note": f"card {MASK}",
        "order.id": ORDER_ID,
        "gen_ai.usage.input_tokens": 812,
        "http.route": "/checkout",
        "user.email": "ann@example.com",
    }
    assert trace["resources"][span["resource_id"]]["attributes"] == {
        "service.name": "checkout",
        "deployment.api_key": MASK,
        "host.name": "web-1",
    }
    (event,) = span["events"]
    assert event["attributes"] == {"exception.message": f"declined {MASK}", "cookie": MASK, "attempt": "2"}
    (link,) = span["links"]
    assert link["attributes"] == {"access_token": MASK}
    assert span["status_message"] == f"charge failed for {MASK} (Bearer {MASK})"
    # Nothing secret is stored anywhere in the trace document.
    stored = orjson.dumps(trace).decode()
    for secret in ("hunter2", VISA, "abc.def", "k-123", "sid=abc", "at-123", "xyz"):
        assert secret not in stored


def test_redaction_counts_are_recorded_per_rule(client: Any, api: Any, ingest_token: str, project: Any) -> None:
    ingest_and_read(
        client, api, ingest_token, request_with_secrets(secrets.token_hex(16), status_message=f"card {VISA}")
    )
    # secret keys: authorization, db.password, deployment.api_key, cookie, access_token
    # cards: payment.note, exception.message, status message; bearer: the authorization value never reaches the
    # value rules because its key rule already blanked it.
    assert redaction_counts(project) == {"default: secret key": 5, "default: card number": 3}
    ingest_and_read(client, api, ingest_token, request_with_secrets(secrets.token_hex(16)))
    assert redaction_counts(project) == {"default: secret key": 10, "default: card number": 5}


def test_clean_spans_record_no_redaction_counts(client: Any, api: Any, ingest_token: str, project: Any) -> None:
    request = otlp_request(
        [
            {
                "trace_id": secrets.token_hex(16),
                "span_id": "00000000000000aa",
                "start": now_ns(),
                "attributes": {"a": "b"},
            }
        ]
    )
    ingest_and_read(client, api, ingest_token, request)
    assert redaction_counts(project) == {}


def test_project_rules_replace_and_hash_by_key_and_by_value(
    client: Any, api: Any, ingest_token: str, project: Any
) -> None:
    RedactionRule.objects.create(
        project=project, name="emails", target="value", pattern=r"[\w.+-]+@[\w-]+\.[\w.]+", action="hash"
    )
    RedactionRule.objects.create(project=project, name="hosts", target="key", pattern=r"^host\.name$", action="replace")
    RedactionRule.objects.create(project=project, name="orders", target="key", pattern=r"^order\.id$", action="hash")
    RedactionRule.objects.create(project=project, name="off", target="key", pattern=r"route", enabled=False)

    first = only_span(ingest_and_read(client, api, ingest_token, request_with_secrets(secrets.token_hex(16))))
    second_trace = ingest_and_read(client, api, ingest_token, request_with_secrets(secrets.token_hex(16)))
    second = only_span(second_trace)

    email, order = first["attributes"]["user.email"], first["attributes"]["order.id"]
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", email)
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", order)
    assert email != order
    # Equal secrets hash equally, so they stay joinable without being readable.
    assert second["attributes"]["user.email"] == email
    assert second["attributes"]["order.id"] == order
    assert first["attributes"]["http.route"] == "/checkout"  # the disabled rule does nothing
    assert first["attributes"]["db.password"] == MASK  # defaults still apply next to project rules
    assert second_trace["resources"][second["resource_id"]]["attributes"]["host.name"] == MASK
    counts = redaction_counts(project)
    assert counts["emails"] == 2
    assert counts["orders"] == 2
    assert counts["hosts"] == 2  # the resource is redacted in each request that carries it


def test_hashed_values_can_be_searched_for(client: Any, api: Any, ingest_token: str, project: Any) -> None:
    RedactionRule.objects.create(project=project, name="emails", target="value", pattern=r"\S+@\S+", action="hash")
    trace_ids = [secrets.token_hex(16) for _ in range(2)]
    spans = [only_span(ingest_and_read(client, api, ingest_token, request_with_secrets(t))) for t in trace_ids]
    hashed = spans[0]["attributes"]["user.email"]
    response = api.get("/api/v1/traces", {"attr": f"user.email={hashed}"})
    assert response.status_code == 200
    assert sorted(t["trace_id"] for t in response.json()["traces"]) == sorted(trace_ids)
    assert api.get("/api/v1/traces", {"attr": "user.email=ann@example.com"}).json()["traces"] == []


def test_default_redaction_off_keeps_values_but_project_rules_still_apply(
    client: Any, api: Any, ingest_token: str, project: Any
) -> None:
    ProjectIngestSettings.objects.update_or_create(project=project, defaults={"default_redaction": False})
    RedactionRule.objects.create(project=project, name="db passwords", target="key", pattern=r"password")
    span = only_span(
        ingest_and_read(client, api, ingest_token, request_with_secrets(secrets.token_hex(16), status_message=VISA))
    )
    assert span["attributes"]["http.request.header.authorization"] == "Bearer abc.def"
    assert span["attributes"]["payment.note"] == f"card {VISA}"
    assert span["attributes"]["db.password"] == MASK
    assert span["status_message"] == VISA
    assert redaction_counts(project) == {"db passwords": 1}


def test_default_redaction_off_and_no_rules_stores_everything_verbatim(
    client: Any, api: Any, ingest_token: str, project: Any
) -> None:
    ProjectIngestSettings.objects.update_or_create(project=project, defaults={"default_redaction": False})
    trace = ingest_and_read(client, api, ingest_token, request_with_secrets(secrets.token_hex(16)))
    span = only_span(trace)
    assert span["attributes"]["db.password"] == "hunter2"
    assert span["events"][0]["attributes"]["cookie"] == "sid=abc"
    assert trace["resources"][span["resource_id"]]["attributes"]["deployment.api_key"] == "k-123"
    assert redaction_counts(project) == {}


def test_rules_of_another_project_do_not_apply(client: Any, api: Any, ingest_token: str, project: Any) -> None:
    from traces.services import project_get_or_create

    other = project_get_or_create(name="billing")[0]
    RedactionRule.objects.create(project=other, name="emails", target="value", pattern=r"\S+@\S+")
    span = only_span(ingest_and_read(client, api, ingest_token, request_with_secrets(secrets.token_hex(16))))
    assert span["attributes"]["user.email"] == "ann@example.com"


def test_invalid_rule_pattern_is_refused_when_saved(project: Any) -> None:
    rule = RedactionRule(project=project, name="broken", target="value", pattern="(unclosed", action="replace")
    with pytest.raises(ValidationError, match="regular expression"):
        rule.full_clean()


def test_an_invalid_rule_saved_before_validation_does_not_stop_ingest_or_the_other_rules(
    client: Any, api: Any, ingest_token: str, project: Any
) -> None:
    RedactionRule.objects.create(project=project, name="broken", target="value", pattern="(unclosed")
    RedactionRule.objects.create(project=project, name="emails", target="value", pattern=r"\S+@\S+")
    span = only_span(ingest_and_read(client, api, ingest_token, request_with_secrets(secrets.token_hex(16))))
    assert span["attributes"]["user.email"] == MASK
    assert span["attributes"]["db.password"] == MASK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("invalid bearer token", "invalid bearer token"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("order 1234567890123452 shipped", "order 1234567890123452 shipped"),  # Luhn-valid, no card issuer prefix
        ("paid with 5500 0000 0000 0004", "paid with ***"),
    ],
)
def test_default_value_rules_leave_prose_and_ids_alone(text: str, expected: str) -> None:
    from traces.ingest.redaction import Redactor

    assert Redactor(rules=[]).text(text) == expected
