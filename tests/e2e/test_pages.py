"""The pages a user sees first, in a real browser: login, the overview, the navigation, the API docs, logout."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from tests.conftest import now_ns, otlp_request, post_otlp
from tests.e2e.conftest import PASSWORD, PageLog, log_in

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=alert(1)>"


def ingest(token: str, *, service: str, name: str, error: bool = False) -> str:
    """Send one two-span trace through the real OTLP endpoint; return its trace ID."""
    trace_id = secrets.token_hex(16)
    start = now_ns() - 5_000_000_000
    request = otlp_request(
        [
            {
                "trace_id": trace_id,
                "span_id": "00000000000000a1",
                "start": start,
                "end": start + 42_000_000,
                "name": name,
                "error": error,
            },
            {
                "trace_id": trace_id,
                "span_id": "00000000000000a2",
                "parent_span_id": "00000000000000a1",
                "start": start + 1_000_000,
                "name": "SELECT orders",
            },
        ],
        service=service,
    )
    response = post_otlp(Client(), request, token)
    assert response.status_code == 200, response.content
    return trace_id


def test_login_page_renders(page: Page, db: None) -> None:
    page.goto("/login/")
    expect(page).to_have_title(re.compile("Log in"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    # Logged out, the app navigation is not offered.
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)


def test_wrong_password_shows_an_error_and_stays_on_login(page: Page, member: Any) -> None:
    log_in(page, "alice", "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    expect(page).to_have_url(re.compile(r"/login/"))
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def test_logging_in_lands_on_the_overview_with_instructions_projects_services_and_traces(
    page: Page, live_server: Any, member: Any, ingest_token: str, settings: Any
) -> None:
    settings.SITE_ROOT = live_server.url
    trace_id = ingest(ingest_token, service="checkout", name="POST /orders", error=True)
    ingest(ingest_token, service="payments", name="charge")

    log_in(page, "alice", PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()

    snippet = page.locator("pre.snippet")
    expect(snippet).to_contain_text(f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={live_server.url}/v1/traces")
    expect(snippet).to_contain_text("OTEL_EXPORTER_OTLP_TRACES_HEADERS=Authorization=Bearer")
    expect(page.get_by_text("POST /v1/traces")).to_be_visible()
    expect(page.get_by_text("POST /api/v2/spans")).to_be_visible()
    expect(page.get_by_text("POST /api/v1/import/jaeger")).to_be_visible()

    projects = page.get_by_role("heading", name="Projects").locator("xpath=..").locator("table")
    expect(projects.get_by_role("row", name=re.compile(r"shop\s+1"))).to_be_visible()

    chips = page.locator("p.chips .chip")
    expect(chips).to_have_text(["checkout", "payments"])

    recent = page.locator("#recent-traces")
    row = recent.get_by_role("row").filter(has_text=trace_id)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("checkout")
    expect(row).to_contain_text("POST /orders")
    expect(row).to_contain_text("42.0 ms")
    expect(row).to_have_class(re.compile("has-error"))
    expect(recent.get_by_role("row")).to_have_count(3)  # header + two traces


def test_overview_without_data_says_so(logged_in_page: Page) -> None:
    expect(logged_in_page.get_by_text("No services have reported yet.")).to_be_visible()
    expect(logged_in_page.get_by_text("No traces in the last 24 hours.")).to_be_visible()


def test_hostile_service_and_span_names_render_as_text(
    logged_in_page: Page, page_log: PageLog, ingest_token: str
) -> None:
    trace_id = ingest(ingest_token, service=XSS, name=XSS)
    page = logged_in_page
    page.reload()
    expect(page.locator("p.chips .chip").filter(has_text=XSS)).to_have_text(XSS)
    row = page.locator("#recent-traces").get_by_role("row").filter(has_text=trace_id)
    expect(row.locator(".op")).to_have_text(XSS)
    expect(row).to_contain_text(f"{XSS} {XSS}")
    # Escaped, the markup never became an element, so nothing could run.
    expect(page.locator("img")).to_have_count(0)
    page.wait_for_timeout(300)
    assert page_log.dialogs == []
    assert page_log.page_errors == []


def test_navigation_shows_every_section(logged_in_page: Page) -> None:
    nav = logged_in_page.get_by_role("navigation", name="Main")
    for label in ("Traces", "Services", "Map", "SLOs", "Dashboards", "Alerts"):
        expect(nav.get_by_text(label, exact=True)).to_be_visible()
    expect(logged_in_page.locator(".usermenu .username")).to_have_text("alice")


def foreign_resources(page: Page) -> list[str]:
    """URLs of every image, script, stylesheet and icon the document references from another origin."""
    return page.evaluate(
        """() => [...document.querySelectorAll("img[src], script[src], link[href]")]
            .map((el) => new URL(el.getAttribute("src") || el.getAttribute("href"), document.baseURI))
            .filter((url) => url.origin !== location.origin && url.protocol !== "data:")
            .map((url) => url.href)"""
    )


def test_api_docs_load_swagger_ui_from_vendored_assets_only(
    page: Page, page_log: PageLog, live_server: Any, db: None
) -> None:
    page.goto("/api/docs/")
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("tracing-ui API", timeout=15_000)
    # The read API is documented from the live schema.
    expect(page.get_by_text("/api/v1/traces/{trace_id}", exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page_log.foreign_requests(live_server.url) == []
    assert any("/static/" in url and "swagger" in url.lower() for url in page_log.requests)
    assert any(url.endswith("/api/schema/") or "/api/schema/?" in url for url in page_log.requests)
    assert page_log.page_errors == []
    assert foreign_resources(page) == []


def test_logging_out_returns_to_login_and_the_overview_is_closed_again(logged_in_page: Page, live_server: Any) -> None:
    page = logged_in_page
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))


def test_visiting_the_overview_logged_out_redirects_to_login_and_back_after(
    page: Page, live_server: Any, member: Any
) -> None:
    response = page.goto("/")
    assert response is not None
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
