"""The service page shell: login required, 404 for a service nobody can see, renders the skeleton for a member."""

from __future__ import annotations

import secrets
from typing import Any

from django.urls import reverse

from dashboards.services import rollups_compact
from tests.conftest import now_ns, otlp_request, post_otlp

XSS = "<img src=x onerror=alert(1)>"


def _ingest(client: Any, token: str, service: str) -> None:
    start = now_ns() - 60 * 10**9
    span = {"trace_id": secrets.token_hex(16), "span_id": secrets.token_hex(8), "name": "GET /", "start": start}
    assert post_otlp(client, otlp_request([span], service=service), token).status_code == 200
    rollups_compact()


def test_it_redirects_anonymous_users_to_the_login_page(client: Any, db: None) -> None:
    response = client.get("/services/checkout/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_unknown_service_is_a_friendly_404(client: Any, member: Any, ingest_token: str) -> None:
    _ingest(client, ingest_token, "checkout")
    client.force_login(member)
    response = client.get("/services/nope/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Service not found" in html
    assert "<code>nope</code>" in html
    assert 'href="/services/"' in html
    assert "js/service.js" not in html


def test_a_service_of_another_project_is_a_404(client: Any, django_user_model: Any, ingest_token: str) -> None:
    _ingest(client, ingest_token, "checkout")
    outsider = django_user_model.objects.create_user("bob", password="bob-password-1")
    client.force_login(outsider)
    assert client.get("/services/checkout/").status_code == 404


def test_it_renders_for_a_member(client: Any, member: Any, ingest_token: str) -> None:
    _ingest(client, ingest_token, "checkout")
    client.force_login(member)
    assert reverse("service-detail", args=["checkout"]) == "/services/checkout/"
    response = client.get("/services/checkout/?lookback=6h")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-api-service="/api/v1/services/checkout/"' in html
    assert 'data-service="checkout"' in html
    assert 'value="6h" checked' in html
    assert "js/service.js" in html
    assert "vendor/plotly.min.js" in html
    assert 'href="/services/"' in html
    assert "<h2>Upstream" in html and "<h2>Downstream" in html, "the neighbour cards are on the page"


def test_the_default_preset_is_one_hour(client: Any, member: Any, ingest_token: str) -> None:
    _ingest(client, ingest_token, "checkout")
    client.force_login(member)
    assert 'value="1h" checked' in client.get("/services/checkout/").content.decode()


def test_a_hostile_service_name_is_escaped(client: Any, member: Any, ingest_token: str) -> None:
    _ingest(client, ingest_token, XSS)
    client.force_login(member)
    response = client.get(reverse("service-detail", args=[XSS]))
    assert response.status_code == 200
    html = response.content.decode()
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_services_list_page_still_renders(client: Any, member: Any) -> None:
    client.force_login(member)
    assert client.get("/services/").status_code == 200
