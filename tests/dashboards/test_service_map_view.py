"""The service map page shell: login required, served at /services/map/ ahead of a service called "map"."""

from __future__ import annotations

from typing import Any

from django.urls import reverse


def test_it_redirects_anonymous_users_to_the_login_page(client: Any, db: None) -> None:
    response = client.get("/services/map/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_renders_the_map_shell_for_a_member(client: Any, member: Any) -> None:
    client.force_login(member)
    response = client.get(reverse("service-map") + "?lookback=24h")
    assert reverse("service-map") == "/services/map/"
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-api-map="/api/v1/service-map/"' in html
    assert 'data-api-edge="/api/v1/service-map/edge/"' in html
    assert 'value="24h" checked' in html
    assert "js/service_map.js" in html
    assert "<script>" not in html, "no inline scripts (CSP)"
