"""The services page shell: login required, renders the picker and the table skeleton for a member."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse


def test_it_redirects_anonymous_users_to_the_login_page(client: Any, db: None) -> None:
    response = client.get("/services/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_renders_for_a_member(client: Any, member: Any) -> None:
    client.force_login(member)
    response = client.get(reverse("service-list") + "?lookback=6h")
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("service-list") == "/services/"
    assert 'data-api-services="/api/v1/services/"' in html
    assert 'value="6h" checked' in html
    assert "js/services.js" in html
    assert '<a href="/services/" aria-current="page">Services</a>' in html


@pytest.mark.parametrize("query", ["", "?start=2026-01-01T00:00:00Z"])
def test_the_default_preset_is_one_hour_unless_a_range_is_given(client: Any, member: Any, query: str) -> None:
    client.force_login(member)
    html = client.get("/services/" + query).content.decode()
    assert ('value="1h" checked' in html) is (query == "")
