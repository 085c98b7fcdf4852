"""Search filters: attribute operators, validation (400s, never 500s), autocomplete endpoints and the search page."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from rest_framework.test import APIClient

from tests.conftest import now_ns, otlp_request, post_otlp
from traces.filters import attr_condition_parse
from traces.selectors import AttrCondition

T1 = "a1000000000000000000000000000001"
T2 = "a2000000000000000000000000000002"
T3 = "a3000000000000000000000000000003"
T4 = "a4000000000000000000000000000004"
OLD = "a5000000000000000000000000000005"
SECOND = 1_000_000_000


@pytest.fixture
def stored(client: Any, ingest_token: str) -> int:
    """Four recent traces with typed attributes, and one 90 minutes old.

    T1 checkout ok: status 200, tenant acme, user.id "42" on the root; a child span without user.id; resource prod.
    T2 checkout error: status 500, user.id "7", http.route /api/checkout.
    T3 cart: status "404" as a string (as Zipkin sends it), http.route /Cart; a redis child span with db.system.
    T4 inventory: retries 2.5 (float), cached true (bool); resource staging.
    """
    now = now_ns()

    def send(spans: list[dict[str, Any]], service: str, resource: dict[str, Any] | None = None) -> None:
        response = post_otlp(client, otlp_request(spans, service=service, resource=resource), ingest_token)
        assert response.status_code == 200, response.content

    send(
        [
            {
                "trace_id": T1,
                "span_id": "11" * 8,
                "name": "POST /checkout",
                "start": now - 50 * SECOND,
                "end": now - 50 * SECOND + 40_000_000,
                "attributes": {"http.response.status_code": 200, "tenant": "acme", "user.id": "42"},
            },
            {
                "trace_id": T1,
                "span_id": "12" * 8,
                "parent_span_id": "11" * 8,
                "name": "charge",
                "start": now - 50 * SECOND + 1_000_000,
            },
        ],
        "checkout",
        {"deployment.environment": "prod"},
    )
    send(
        [
            {
                "trace_id": T2,
                "span_id": "21" * 8,
                "name": "POST /checkout",
                "start": now - 40 * SECOND,
                "end": now - 40 * SECOND + 1_500_000_000,
                "attributes": {"http.response.status_code": 500, "user.id": "7", "http.route": "/api/checkout"},
                "error": True,
            }
        ],
        "checkout",
    )
    send(
        [
            {
                "trace_id": T3,
                "span_id": "31" * 8,
                "name": "GET /cart",
                "start": now - 30 * SECOND,
                "end": now - 30 * SECOND + 80_000_000,
                "attributes": {"http.response.status_code": "404", "http.route": "/Cart"},
            },
            {
                "trace_id": T3,
                "span_id": "32" * 8,
                "parent_span_id": "31" * 8,
                "name": "GET",
                "kind": 3,
                "start": now - 30 * SECOND + 1_000_000,
                "attributes": {"db.system": "redis"},
            },
        ],
        "cart",
    )
    send(
        [
            {
                "trace_id": T4,
                "span_id": "41" * 8,
                "name": "reserve",
                "start": now - 20 * SECOND,
                "attributes": {"retries": 2.5, "cached": True},
            }
        ],
        "inventory",
        {"deployment.environment": "staging"},
    )
    send([{"trace_id": OLD, "span_id": "51" * 8, "name": "GET /old", "start": now - 90 * 60 * SECOND}], "cart")
    return now


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {trace["trace_id"] for trace in response.json()["traces"]}


def search(api: APIClient, *attrs: str, **params: str) -> set[str]:
    return ids(api.get("/api/v1/traces", {"attr": list(attrs), **params}))


# --- parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tenant=acme", AttrCondition("tenant", "=", "acme")),
        (" tenant = acme", AttrCondition("tenant", "=", " acme")),
        ("http.url=http://x/?a=b", AttrCondition("http.url", "=", "http://x/?a=b")),
        ("user.id!=42", AttrCondition("user.id", "!=", "42")),
        ("user.id!=", AttrCondition("user.id", "!=", "")),
        ("http.route=~^/api/(a|b)=x$", AttrCondition("http.route", "=~", "^/api/(a|b)=x$")),
        ("http.response.status_code>=500", AttrCondition("http.response.status_code", ">=", "500")),
        ("latency<= -1.5e3 ", AttrCondition("latency", "<=", "-1.5e3")),
        ("n>0", AttrCondition("n", ">", "0")),
        ("n<.5", AttrCondition("n", "<", ".5")),
        ("exists:db.system", AttrCondition("db.system", "exists")),
        ("missing: db.system ", AttrCondition("db.system", "missing")),
        ("exists:a=b", AttrCondition("exists:a", "=", "b")),
    ],
)
def test_attr_conditions_parse(db: None, text: str, expected: AttrCondition) -> None:
    assert attr_condition_parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("novalue", "key=value"),
        ("=value", "no key"),
        ("exists:", "no key"),
        ("n>abc", "needs a number"),
        ("n>1e99999", "needs a number"),
        ("n>nan", "needs a number"),
        ("r=~(", "invalid regular expression"),
        ("r=~(?P<name>x)", "invalid regular expression"),
        ("r=~a**", "invalid regular expression"),
        ("k=a\x00b", "NUL"),
        ("k" * 300 + "=1", "longer than"),
    ],
)
def test_bad_attr_conditions_are_rejected(db: None, text: str, message: str) -> None:
    with pytest.raises(forms.ValidationError) as info:
        attr_condition_parse(text)
    assert message in info.value.messages[0]


# --- operators through the API ------------------------------------------------------------------------------------


def test_equality_still_works_typed_and_on_resources(api: APIClient, stored: int) -> None:
    assert search(api, "http.response.status_code=500") == {T2}
    assert search(api, "http.response.status_code=404") == {T3}, "the string '404' matches the text 404"
    assert search(api, "cached=true") == {T4}
    assert search(api, "deployment.environment=prod") == {T1}
    assert search(api, "tenant=acme", "http.response.status_code=200") == {T1}


def test_not_equal_means_present_with_another_value(api: APIClient, stored: int) -> None:
    assert search(api, "user.id!=42") == {T2}, "T1 has 42; spans without user.id never match"
    assert search(api, "user.id!=7") == {T1}
    assert search(api, "http.response.status_code!=200") == {T2, T3}
    assert search(api, "deployment.environment!=prod") == {T4}, "resource attributes too"


def test_regex_matches_the_text_of_the_value(api: APIClient, stored: int) -> None:
    assert search(api, "http.route=~^/api") == {T2}
    assert search(api, "http.route=~cart") == set(), "case-sensitive by default"
    assert search(api, "http.route=~(?i)cart") == {T3}
    assert search(api, "http.route=~(art|heck)") == {T2, T3}
    assert search(api, "http.response.status_code=~^5") == {T2}, "numbers match as text"
    assert search(api, "deployment.environment=~^stag") == {T4}


def test_numeric_comparisons(api: APIClient, stored: int) -> None:
    assert search(api, "http.response.status_code>=500") == {T2}
    assert search(api, "http.response.status_code>200") == {T2, T3}, "numeric-looking strings count"
    assert search(api, "http.response.status_code<500") == {T1, T3}
    assert search(api, "http.response.status_code<=200") == {T1}
    assert search(api, "retries>2") == {T4}
    assert search(api, "retries>=2.5") == {T4}
    assert search(api, "retries<2.5") == set()
    assert search(api, "tenant>0") == set(), "non-numeric values never match (and never error)"
    assert search(api, "cached>0") == set(), "booleans are not numbers"


def test_exists_and_missing(api: APIClient, stored: int) -> None:
    assert search(api, "exists:db.system") == {T3}
    assert search(api, "exists:deployment.environment") == {T1, T4}, "resource attributes count"
    assert search(api, "missing:user.id", service="checkout") == {T1}, "T1's child span has no user.id"
    assert search(api, "missing:deployment.environment", service="checkout") == {T2}


def test_conditions_are_anded_with_the_other_filters(api: APIClient, stored: int) -> None:
    assert search(api, "http.response.status_code>=400", "http.route=~(?i)cart") == {T3}
    assert search(api, "http.response.status_code>=200", min_duration="1s") == {T2}
    assert search(api, "http.response.status_code>=200", status="ok") == {T1, T3}
    assert search(api, "http.response.status_code>=200", service="cart", operation="GET /cart") == {T3}


def test_lookback_sets_the_window(api: APIClient, stored: int) -> None:
    assert OLD not in search(api)
    assert OLD in search(api, lookback="2h")
    assert OLD in search(api, lookback="1d")
    assert search(api, lookback="15m") == {T1, T2, T3, T4}
    end = str((stored - 60 * 60 * SECOND) // SECOND)
    assert search(api, end=end, lookback="1h") == {OLD}, "lookback counts back from end"


def test_blank_attr_rows_are_ignored(api: APIClient, stored: int) -> None:
    assert search(api, "", "  ") == {T1, T2, T3, T4}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"attr": "n>abc"}, "needs a number"),
        ({"attr": "r=~("}, "invalid regular expression"),
        ({"attr": "r=~[z-a]"}, "invalid regular expression"),
        ({"attr": "=x"}, "no key"),
        ({"attr": "novalue"}, "key=value"),
        ({"attr": "k=\x00"}, "NUL"),
        ({"attr": [f"k{i}=1" for i in range(21)]}, "at most 20"),
        ({"service": "a\x00b"}, "service"),
        ({"min_duration": "9" * 39}, "too long"),
        ({"lookback": "0s"}, "above zero"),
        ({"lookback": "soon"}, "not a duration"),
        ({"start": "9" * 30}, "out of range"),
        ({"start": "9999-01-01T00:00:00Z"}, "out of range"),
    ],
)
def test_bad_input_is_a_400_with_a_readable_message(api: APIClient, params: dict[str, Any], message: str) -> None:
    response = api.get("/api/v1/traces", params)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]


# --- autocomplete -------------------------------------------------------------------------------------------------


def test_attribute_keys_come_from_spans_and_resources(api: APIClient, stored: int) -> None:
    response = api.get("/api/v1/attributes")
    assert response.status_code == 200
    keys = {item["key"]: item for item in response.json()["keys"]}
    assert {"tenant", "http.response.status_code", "db.system", "retries", "service.name"} <= set(keys)
    assert keys["http.response.status_code"]["sources"] == ["span"]
    assert keys["http.response.status_code"]["count"] == 3
    assert "resource" in keys["deployment.environment"]["sources"]


def test_attribute_keys_filter_by_service_and_prefix(api: APIClient, stored: int) -> None:
    cart = {item["key"] for item in api.get("/api/v1/attributes", {"service": "cart"}).json()["keys"]}
    assert "db.system" in cart and "tenant" not in cart and "retries" not in cart
    found = [item["key"] for item in api.get("/api/v1/attributes", {"prefix": "STATUS"}).json()["keys"]]
    assert found == ["http.response.status_code"], "matched anywhere, ignoring case"
    ranked = [item["key"] for item in api.get("/api/v1/attributes", {"prefix": "d"}).json()["keys"]]
    assert set(ranked[:2]) == {"db.system", "deployment.environment"}, "keys starting with the prefix first"
    assert "cached" in ranked[2:] and "user.id" in ranked[2:]


def test_attribute_values(api: APIClient, stored: int) -> None:
    response = api.get("/api/v1/attributes/http.response.status_code/values")
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "http.response.status_code"
    assert {(item["value"], item["type"]) for item in body["values"]} == {
        ("200", "number"),
        ("500", "number"),
        ("404", "string"),
    }
    routes = api.get("/api/v1/attributes/http.route/values", {"prefix": "/api"}).json()["values"]
    assert [item["value"] for item in routes] == ["/api/checkout"]
    envs = api.get("/api/v1/attributes/deployment.environment/values", {"service": "inventory"}).json()["values"]
    assert [item["value"] for item in envs] == ["staging"], "resource values, per service"
    assert api.get("/api/v1/attributes/a%2Fb/values").json() == {"key": "a/b", "values": []}


def test_autocomplete_rejects_bad_parameters(api: APIClient, stored: int) -> None:
    assert api.get("/api/v1/attributes", {"limit": "0"}).status_code == 400
    assert api.get("/api/v1/attributes", {"prefix": "a\x00"}).status_code == 400
    response = api.get("/api/v1/attributes/" + "k" * 300 + "/values")
    assert response.status_code == 400 and "characters" in response.json()["error"]


def test_autocomplete_is_scoped_to_the_callers_projects(stored: int, client: Any, django_user_model: Any) -> None:
    from traces.services import api_token_create, ingest_token_create, project_get_or_create, project_member_add

    other = project_get_or_create(name="other")[0]
    post_otlp(
        client,
        otlp_request(
            [{"trace_id": "b" * 32, "span_id": "b1" * 8, "start": now_ns(), "attributes": {"secret.key": "x"}}],
            service="billing",
        ),
        ingest_token_create(project=other, name="t")[1],
    )
    outsider = django_user_model.objects.create_user("mallory")
    project_member_add(project=other, user=outsider)
    mallory = APIClient()
    mallory.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=outsider)[1]}")
    keys = {item["key"] for item in mallory.get("/api/v1/attributes").json()["keys"]}
    assert "secret.key" in keys and "tenant" not in keys and "http.response.status_code" not in keys
    assert mallory.get("/api/v1/attributes/tenant/values").json()["values"] == []
    values = mallory.get("/api/v1/attributes/service.name/values").json()["values"]
    assert [item["value"] for item in values] == ["billing"]
    assert APIClient().get("/api/v1/attributes").status_code == 401
    assert APIClient().get("/api/v1/attributes/tenant/values").status_code == 401


def test_autocomplete_on_an_empty_store(api: APIClient) -> None:
    assert api.get("/api/v1/attributes").json() == {"keys": []}
    assert api.get("/api/v1/attributes/x/values").json() == {"key": "x", "values": []}


def test_the_openapi_schema_documents_the_operators_and_autocomplete(client: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/v1/attributes", "/api/v1/attributes/{key}/values"} <= set(schema["paths"])
    search_doc = schema["paths"]["/api/v1/traces"]["get"]
    assert "missing:key" in search_doc["description"]
    params = {param["name"]: param for param in search_doc["parameters"]}
    assert "exists:key" in params["attr"]["description"] and "lookback" in params


# --- the page -----------------------------------------------------------------------------------------------------


def test_the_search_page_needs_a_login(client: Any) -> None:
    response = client.get("/traces/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_search_page_renders_the_form_from_the_url(client: Any, member: Any) -> None:
    client.force_login(member)
    params = {"service": "checkout", "attr": ["http.route=~^/api", "user.id!=42"], "min_duration": "250ms"}
    response = client.get("/traces/", {**params, "status": "error"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="checkout"' in html and 'value="http.route=~^/api"' in html and 'value="user.id!=42"' in html
    assert 'value="250ms"' in html and 'value="error" checked' in html
    assert 'data-valid="1"' in html
    assert 'aria-current="page"' in html, "the Traces nav link is live"
    assert "<script>" not in html, "no inline scripts (CSP)"


def test_the_search_page_shows_form_errors(client: Any, member: Any) -> None:
    client.force_login(member)
    html = client.get("/traces/", {"attr": ["ok=1", "r=~("], "min_duration": "fast"}).content.decode()
    assert 'data-valid="0"' in html
    assert "invalid regular expression" in html and "not a duration" in html
    assert 'value="r=~("' in html


def test_the_trace_id_box_jumps_to_the_trace(client: Any, member: Any) -> None:
    client.force_login(member)
    response = client.get("/traces/", {"trace_id": f" {T1.upper()} ", "start": "whatever"})
    assert response.status_code == 302 and response["Location"] == f"/traces/{T1}/"
    response = client.get("/traces/", {"trace_id": "abcd" * 4})
    assert response["Location"] == "/traces/0000000000000000abcdabcdabcdabcd/", "64-bit IDs are padded"
    html = client.get("/traces/", {"trace_id": "nope"}).content.decode()
    assert "hexadecimal" in html


def test_the_search_page_escapes_what_it_echoes(client: Any, member: Any) -> None:
    client.force_login(member)
    html = client.get("/traces/", {"service": '"><img src=x onerror=alert(1)>'}).content.decode()
    assert "<img src=x" not in html and "&lt;img src=x" in html
