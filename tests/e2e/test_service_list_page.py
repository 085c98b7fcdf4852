"""The services page in a real browser: RED numbers per service, sorting, time range picker, states, XSS, nav."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from dashboards.models import RollupDelta
from dashboards.services import rollups_compact
from tests.conftest import now_ns, otlp_request, post_otlp
from tests.e2e.conftest import PageLog

pytestmark = pytest.mark.e2e

MS = 1_000_000
SECOND = 1_000_000_000
XSS = "<img src=x onerror=alert(1)>"


def _ingest(client: Any, token: str, service: str, *, requests: int, errors: int, ms: int, ago_s: int) -> None:
    """`requests` SERVER spans of `ms` milliseconds in `service`, `ago_s` seconds ago; the first `errors` fail."""
    start = now_ns() - ago_s * SECOND
    spans = [
        {
            "trace_id": secrets.token_hex(16),
            "span_id": secrets.token_hex(8),
            "name": "GET /",
            "start": start + index * MS,
            "end": start + index * MS + ms * MS,
            "error": index < errors,
        }
        for index in range(requests)
    ]
    response = post_otlp(client, otlp_request(spans, service=service), token)
    assert response.status_code == 200, response.content


@pytest.fixture
def traffic(client: Any, ingest_token: str) -> None:
    """Three services in the last minutes: by rate search > checkout > cart, by error % checkout > search > cart."""
    _ingest(client, ingest_token, "search", requests=100, errors=1, ms=40, ago_s=300)
    _ingest(client, ingest_token, "checkout", requests=40, errors=4, ms=20, ago_s=240)
    _ingest(client, ingest_token, "cart", requests=20, errors=0, ms=5, ago_s=180)
    rollups_compact()


def _rows(page: Page) -> list[str]:
    page.wait_for_selector("#services-state[data-state=done]", state="attached")
    names: list[str] = page.locator("#services-body tr").evaluate_all("rows => rows.map(r => r.dataset.service)")
    return names


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _clean(page_log: PageLog) -> None:
    assert not page_log.page_errors, page_log.page_errors
    assert not page_log.dialogs, page_log.dialogs
    assert not page_log.console_errors, page_log.console_errors


def test_it_lists_every_service_with_its_numbers(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.goto("/services/")
    assert _rows(page) == ["search", "checkout", "cart"]  # busiest first
    checkout = page.locator("#services-body tr[data-service=checkout]")
    expect(checkout.locator(".service-chip")).to_have_text("checkout")
    expect(checkout.locator("a.service-link")).to_have_attribute("href", "/services/checkout/")
    expect(checkout.locator("td.rate .requests")).to_have_text("40 req")
    expect(checkout.locator("td.rate .value")).to_have_text("0.67 req/min")  # 40 in an hour
    expect(checkout.locator("td.errors .value")).to_have_text("10.0 %")
    expect(checkout.locator("td.errors .value")).to_have_class(re.compile(r"error-high"))
    expect(checkout.locator("td.p50")).to_have_text(re.compile(r"^(19\.\d|20\.\d) ms$"))
    expect(checkout.locator("svg.sparkline")).to_have_count(3)
    search = page.locator("#services-body tr[data-service=search]")
    expect(search.locator("td.errors .value")).to_have_text("1.00 %")
    expect(search.locator("td.errors .value")).not_to_have_class(re.compile(r"error-high"))  # 1 % is not above 1 %
    expect(page.locator("#services-body tr[data-service=cart] td.errors .value")).to_have_text("0 %")
    expect(page.locator("#services-summary")).to_contain_text("3 services")
    expect(page.locator("#services-lag")).to_be_hidden()
    _clean(page_log)


def test_sorting_by_error_percent_reorders_rows_and_is_kept_in_the_url(
    logged_in_page: Page, page_log: PageLog, traffic: None
) -> None:
    page = logged_in_page
    page.goto("/services/")
    assert _rows(page) == ["search", "checkout", "cart"]
    page.get_by_role("button", name="Error %").click()
    assert _rows(page) == ["checkout", "search", "cart"]
    assert _query(page)["sort"] == ["-errors"]
    expect(page.locator("th:has(button[data-sort=errors])")).to_have_attribute("aria-sort", "descending")
    page.get_by_role("button", name="Error %").click()
    assert _rows(page) == ["cart", "search", "checkout"]
    assert _query(page)["sort"] == ["errors"]
    page.reload()
    assert _rows(page) == ["cart", "search", "checkout"]
    page.get_by_role("button", name="Service").click()
    assert _rows(page) == ["cart", "checkout", "search"]
    _clean(page_log)


def test_the_lookback_picker_updates_the_url_and_refetches(
    logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str, traffic: None
) -> None:
    _ingest(client, ingest_token, "nightly", requests=5, errors=0, ms=900, ago_s=3 * 3600)
    rollups_compact()
    page = logged_in_page
    page.goto("/services/?sort=name")
    assert _rows(page) == ["cart", "checkout", "search"]
    expect(page.locator("#range-picker input[value='1h']")).to_be_checked()
    page.locator("#range-picker label", has_text="6h").click()
    page.wait_for_url(re.compile(r"lookback=6h"))
    expect(page.locator("#services-body tr")).to_have_count(4)
    assert _rows(page) == ["cart", "checkout", "nightly", "search"]
    assert _query(page) == {"sort": ["name"], "lookback": ["6h"]}
    assert any("/api/v1/services/?lookback=6h" in url for url in page_log.requests), page_log.requests
    page.locator("#range-picker label", has_text="15m").click()
    page.wait_for_url(re.compile(r"lookback=15m"))
    expect(page.locator("#services-body tr")).to_have_count(3)
    page.go_back()
    expect(page.locator("#services-body tr")).to_have_count(4)
    expect(page.locator("#range-picker input[value='6h']")).to_be_checked()
    _clean(page_log)


def test_a_hostile_service_name_renders_as_text(
    logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str
) -> None:
    _ingest(client, ingest_token, XSS, requests=3, errors=1, ms=10, ago_s=120)
    rollups_compact()
    page = logged_in_page
    page.goto("/services/")
    assert _rows(page) == [XSS]
    row = page.locator("#services-body tr").first
    expect(row.locator(".service-chip")).to_have_text(XSS)
    expect(row.locator("a.service-link")).to_have_attribute(
        "href", "/services/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/"
    )
    expect(page.locator("#services-body img")).to_have_count(0)
    page.wait_for_timeout(300)
    _clean(page_log)


def test_empty_and_lag_states(logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str) -> None:
    page = logged_in_page
    page.goto("/services/")
    expect(page.locator("#services-state")).to_have_attribute("data-state", "empty")
    expect(page.locator("#services-state")).to_contain_text("No rolled-up traffic in this window")
    expect(page.locator("#services-table")).to_be_hidden()
    # Spans arrived but compaction has not run for a minute: the page says the metrics trail.
    _ingest(client, ingest_token, "checkout", requests=2, errors=0, ms=10, ago_s=60)
    RollupDelta.objects.update(created_at=dt.datetime.now(tz=dt.UTC) - dt.timedelta(seconds=75))
    page.reload()
    expect(page.locator("#services-lag")).to_be_visible()
    expect(page.locator("#services-lag")).to_have_text(re.compile(r"^metrics trail ingest by (7[5-9]|8\d) s$"))
    _clean(page_log)


def test_the_nav_link_goes_to_the_page(logged_in_page: Page, page_log: PageLog) -> None:
    page = logged_in_page
    page.goto("/traces/")
    page.locator("nav.mainnav").get_by_role("link", name="Services").click()
    page.wait_for_url("**/services/")
    expect(page.get_by_role("heading", name="Services")).to_be_visible()
    expect(page.locator("nav.mainnav a[aria-current=page]")).to_have_text("Services")
    expect(page.locator("#services-state")).to_have_attribute("data-state", "empty")
    assert not page_log.dialogs and not page_log.page_errors


def test_it_refreshes_every_30_seconds(
    logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str, traffic: None
) -> None:
    page = logged_in_page
    page.clock.install()
    page.goto("/services/")
    assert _rows(page) == ["search", "checkout", "cart"]
    _ingest(client, ingest_token, "payments", requests=500, errors=0, ms=3, ago_s=60)
    rollups_compact()
    fetches = sum("/api/v1/services/" in url for url in page_log.requests)
    page.clock.run_for(31_000)
    expect(page.locator("#services-body tr")).to_have_count(4)
    assert _rows(page)[0] == "payments"
    assert sum("/api/v1/services/" in url for url in page_log.requests) == fetches + 1
    _clean(page_log)


def test_a_bad_time_range_shows_the_api_error_with_a_retry(logged_in_page: Page, page_log: PageLog) -> None:
    page = logged_in_page
    page.goto("/services/?lookback=soon")
    state = page.locator("#services-state")
    expect(state).to_have_attribute("data-state", "error")
    expect(state).to_contain_text("Could not load services:")
    expect(state.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.locator("#range-picker input:checked")).to_have_count(0)
    # Picking a preset replaces the bad value and loads.
    page.locator("#range-picker label", has_text="24h").click()
    expect(state).to_have_attribute("data-state", "empty")
    assert _query(page) == {"lookback": ["24h"]}
    assert not page_log.page_errors and not page_log.dialogs
