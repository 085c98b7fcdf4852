"""The service page in a real browser: totals, three charts, exemplar markers and links, operations, traces, XSS."""

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
from tests.e2e.test_service_map_page import roll_up, shop

pytestmark = pytest.mark.e2e

MS = 1_000_000
SECOND = 1_000_000_000
XSS = "<img src=x onerror=alert(1)>"


def _ingest(client: Any, token: str, operation: str, *, requests: int, errors: int, ms: int, ago_s: int) -> None:
    """`requests` traces whose root is a SERVER span `operation` of `ms` ms in checkout; the first `errors` fail.
    Each root has a CLIENT child `charge`."""
    start = now_ns() - ago_s * SECOND
    spans = []
    for index in range(requests):
        trace, root = secrets.token_hex(16), secrets.token_hex(8)
        begin = start + index * MS
        spans.append(
            {
                "trace_id": trace,
                "span_id": root,
                "name": operation,
                "start": begin,
                "end": begin + (ms + index) * MS,
                "error": index < errors,
            }
        )
        spans.append(
            {
                "trace_id": trace,
                "span_id": secrets.token_hex(8),
                "parent_span_id": root,
                "kind": 3,
                "name": "charge",
                "start": begin + MS,
                "end": begin + 2 * MS,
            }
        )
    response = post_otlp(client, otlp_request(spans, service="checkout"), token)
    assert response.status_code == 200, response.content


@pytest.fixture
def traffic(client: Any, ingest_token: str) -> None:
    """checkout: POST /checkout (30 req, 3 errors, slow) and GET /cart (60 req, no errors, fast), minutes apart."""
    _ingest(client, ingest_token, "POST /checkout", requests=30, errors=3, ms=200, ago_s=600)
    _ingest(client, ingest_token, "GET /cart", requests=60, errors=0, ms=10, ago_s=300)
    rollups_compact()


def _ready(page: Page) -> None:
    page.wait_for_selector("#service-page[data-rendered='1']", state="attached")


def _operations(page: Page) -> list[str]:
    names: list[str] = page.locator("#operations-body tr").evaluate_all("rows => rows.map(r => r.dataset.operation)")
    return names


def _clean(page_log: PageLog) -> None:
    assert not page_log.page_errors, page_log.page_errors
    assert not page_log.dialogs, page_log.dialogs
    assert not page_log.console_errors, page_log.console_errors


def test_it_shows_totals_charts_operations_and_traces(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.set_viewport_size({"width": 1360, "height": 900})
    page.goto("/services/checkout/")
    _ready(page)
    expect(page.locator("#service-title")).to_have_text("checkout")
    expect(page.locator("#total-requests")).to_have_text("90 requests")
    expect(page.locator("#total-rate")).to_have_text("1.50 req/min")
    expect(page.locator("#total-errors")).to_have_text("3.33 %")
    expect(page.locator("#total-errors")).to_have_class(re.compile(r"error-high"))
    for key in ("p50", "p95", "p99"):
        expect(page.locator(f"#total-{key}")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    # Three Plotly charts; the latency one has three percentile lines and the exemplar markers.
    expect(page.locator(".red-chart .main-svg").first).to_be_attached()
    assert page.locator(".red-chart").evaluate_all("charts => charts.map(c => (c.data || []).length)") == [1, 1, 4]
    expect(page.locator("#chart-latency .scatterlayer .trace:last-child path.point")).not_to_have_count(0)
    # Operations: all span names of the service, biggest impact first, with a bar.
    assert _operations(page) == ["POST /checkout", "GET /cart", "charge"]
    checkout = page.locator("#operations-body tr[data-operation='POST /checkout']")
    expect(checkout.locator("td.kind")).to_have_text("SERVER")
    expect(checkout.locator("td.errors .value")).to_have_text("10.0 %")
    expect(checkout.locator(".impact-bar .fill")).to_have_attribute("style", re.compile(r"width: 100(\.0)?%"))
    # Slowest traces link to the trace at the span; recent errors list the three failed traces.
    expect(page.locator("#slowest-list li").first).to_be_visible()
    assert 1 <= page.locator("#slowest-list li").count() <= 10
    expect(page.locator("#slowest-list a").first).to_have_attribute(
        "href", re.compile(r"^/traces/[0-9a-f]{32}/\?span=[0-9a-f]{16}$")
    )
    expect(page.locator("#slowest-list a").first).to_have_text(re.compile(r"^2\d\d ms$"))
    expect(page.locator("#errors-body tr")).to_have_count(3)
    expect(page.locator("#errors-body .root-name").first).to_have_text("POST /checkout")
    expect(page.locator("#service-lag")).to_be_hidden()
    expect(page.locator("#back-to-services")).to_have_attribute("href", "/services/")
    _clean(page_log)


def test_clicking_an_exemplar_marker_opens_its_trace(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.goto("/services/checkout/")
    _ready(page)
    marker = page.locator("#chart-latency .scatterlayer .trace:last-child path.point").first
    expect(marker).to_be_attached()
    exemplars = page.locator("#chart-latency").evaluate("c => c.data[3].customdata")
    box = marker.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 20, y)
    page.mouse.move(x, y, steps=4)
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(r"/traces/[0-9a-f]{32}/\?span=[0-9a-f]{16}$"))
    trace_id, span_id = urlsplit(page.url).path.split("/")[2], parse_qs(urlsplit(page.url).query)["span"][0]
    assert [trace_id, span_id] in exemplars, (page.url, exemplars)
    _clean(page_log)


def test_the_exemplar_list_links_to_the_traces(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.goto("/services/checkout/")
    _ready(page)
    page.locator("#exemplar-details summary").click()
    link = page.locator("#exemplar-list a").first
    href = link.get_attribute("href")
    assert href and re.fullmatch(r"/traces/[0-9a-f]{32}/\?span=[0-9a-f]{16}", href), href
    link.click()
    page.wait_for_url(re.compile(re.escape(href) + "$"))
    _clean(page_log)


def test_sorting_operations_by_error_percent(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.goto("/services/checkout/")
    _ready(page)
    assert _operations(page) == ["POST /checkout", "GET /cart", "charge"]
    page.locator("#operations-table").get_by_role("button", name="Error %").click()
    assert _operations(page)[0] == "POST /checkout"
    assert parse_qs(urlsplit(page.url).query)["sort"] == ["-errors"]
    page.locator("#operations-table").get_by_role("button", name="Error %").click()
    assert _operations(page) == ["charge", "GET /cart", "POST /checkout"]  # ties by name
    page.locator("#operations-table").get_by_role("button", name="Operation").click()
    assert _operations(page) == ["charge", "GET /cart", "POST /checkout"]
    page.locator("#operations-table").get_by_role("button", name="Rate").click()
    assert _operations(page)[0] in ("GET /cart", "charge")
    _clean(page_log)


def test_an_operation_links_to_the_trace_search(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.goto("/services/checkout/?lookback=6h")
    _ready(page)
    page.locator("#operations-body tr[data-operation='GET /cart'] a.operation-link").click()
    page.wait_for_url(re.compile(r"/traces/\?"))
    assert parse_qs(urlsplit(page.url).query) == {
        "service": ["checkout"],
        "operation": ["GET /cart"],
        "lookback": ["6h"],
    }
    expect(page.locator("#f-operation")).to_have_value("GET /cart")
    _clean(page_log)


def test_the_lookback_picker_updates_the_url(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.goto("/services/checkout/")
    _ready(page)
    page.locator("#range-picker label", has_text="24h").click()
    page.wait_for_url(re.compile(r"lookback=24h"))
    expect(page.locator("#total-requests")).to_have_text("90 requests")
    assert any("/api/v1/services/checkout/?lookback=24h" in url for url in page_log.requests)
    _clean(page_log)


def test_a_hostile_operation_name_renders_as_text(
    logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str
) -> None:
    _ingest(client, ingest_token, XSS, requests=3, errors=1, ms=10, ago_s=120)
    rollups_compact()
    page = logged_in_page
    page.goto("/services/checkout/")
    _ready(page)
    row = page.locator("#operations-body tr").filter(has_text="<img")
    expect(row.locator("a.operation-link")).to_have_text(XSS)
    expect(page.locator("#errors-body .root-name")).to_have_text(XSS)
    expect(page.locator("#service-page img")).to_have_count(0)
    page.locator("#chart-latency .scatterlayer .trace:last-child path.point").first.hover(force=True)
    page.wait_for_timeout(300)
    _clean(page_log)


def test_an_unknown_service_is_a_404_page(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    response = page.goto("/services/nope/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Service not found")).to_be_visible()
    page.get_by_role("link", name="All services").click()
    page.wait_for_url("**/services/")
    assert not page_log.dialogs and not page_log.page_errors


def test_an_empty_window_says_so(logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str) -> None:
    _ingest(client, ingest_token, "GET /", requests=2, errors=0, ms=5, ago_s=3 * 3600)
    rollups_compact()
    page = logged_in_page
    page.goto("/services/checkout/?lookback=15m")
    _ready(page)
    expect(page.locator("#service-state")).to_have_attribute("data-state", "empty")
    expect(page.locator("#service-state")).to_contain_text("No rolled-up traffic")
    expect(page.locator("#operations-empty")).to_be_visible()
    _clean(page_log)


def test_a_bad_time_range_shows_the_api_error(logged_in_page: Page, page_log: PageLog, traffic: None) -> None:
    page = logged_in_page
    page.goto("/services/checkout/?lookback=soon")
    state = page.locator("#service-state")
    expect(state).to_have_attribute("data-state", "error")
    expect(state).to_contain_text("Could not load checkout:")
    expect(state.get_by_role("button", name="Retry")).to_be_visible()
    assert not page_log.page_errors and not page_log.dialogs


def test_clicking_a_service_on_the_list_lands_on_its_page(
    logged_in_page: Page, page_log: PageLog, traffic: None
) -> None:
    page = logged_in_page
    page.goto("/services/?lookback=6h")
    page.locator("#services-body tr[data-service=checkout] a.service-link").click()
    page.wait_for_url("**/services/checkout/")
    _ready(page)
    expect(page.locator("#service-title")).to_have_text("checkout")
    page.locator("#back-to-services").click()
    page.wait_for_url("**/services/")
    _clean(page_log)


def test_the_lag_notice_shows_when_rollups_trail(
    logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str, traffic: None
) -> None:
    _ingest(client, ingest_token, "GET /cart", requests=2, errors=0, ms=10, ago_s=60)
    RollupDelta.objects.update(created_at=dt.datetime.now(tz=dt.UTC) - dt.timedelta(seconds=75))
    page = logged_in_page
    page.goto("/services/checkout/")
    _ready(page)
    expect(page.locator("#service-lag")).to_be_visible()
    expect(page.locator("#service-lag")).to_have_text(re.compile(r"^metrics trail ingest by (7[5-9]|8\d) s$"))
    _clean(page_log)


def _neighbours(page: Page, side: str) -> list[str]:
    names: list[str] = page.locator(f"#{side}-body tr").evaluate_all("rows => rows.map(r => r.dataset.neighbour)")
    return names


def test_callers_and_callees_are_listed_and_link_on(
    logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str
) -> None:
    shop(client, ingest_token, count=6, ago_s=300, charge_errors=3, side_service=XSS)
    roll_up()
    page = logged_in_page
    page.goto("/services/checkout/?lookback=6h")
    _ready(page)
    assert _neighbours(page, "upstream") == ["frontend"]
    assert _neighbours(page, "downstream") == ["payments"]
    payments = page.locator("#downstream-body tr[data-neighbour=payments]")
    expect(payments.locator("td.rate")).to_have_text(re.compile(r"^\d+(\.\d+)?/min$"))
    expect(payments.locator("td.errors .value")).to_have_text("50.0 %")
    expect(payments.locator("td.errors .sub")).to_have_text("3 of 6")
    expect(payments.locator("td.p95")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    expect(page.locator("#upstream-empty")).to_be_hidden()

    # A caller links to its own page, keeping the time range; its callers include the "clients" of root spans.
    page.locator("#upstream-body a.neighbour-link", has_text="frontend").click()
    page.wait_for_url(re.compile(r"/services/frontend/\?lookback=6h$"))
    _ready(page)
    clients = page.locator("#upstream-body tr[data-kind=clients]")
    expect(clients).to_have_count(1)
    expect(clients.locator("a")).to_have_count(0)
    assert set(_neighbours(page, "downstream")) == {"checkout", XSS}
    hostile = page.locator("#downstream-body tr").filter(has_text="<img")
    expect(hostile.locator("a.neighbour-link")).to_have_text(XSS)
    expect(page.locator("#service-page img")).to_have_count(0)

    # An uninstrumented callee is plain text with its kind.
    page.goto("/services/payments/?lookback=6h")
    _ready(page)
    database = page.locator("#downstream-body tr[data-neighbour='postgresql orders']")
    expect(database.locator(".neighbour-name")).to_have_text("postgresql orders")
    expect(database.locator(".kind-tag")).to_have_text("database")
    expect(database.locator("a")).to_have_count(0)

    # "Open in map" shows the map around the service, one hop each way, in the same time range.
    link = page.get_by_role("link", name="Open in map")
    expect(link).to_have_attribute("href", "/services/map/?service=payments&hops=1&lookback=6h")
    link.click()
    page.wait_for_url(re.compile(r"/services/map/\?service=payments&hops=1&lookback=6h$"))
    page.wait_for_selector("#map-page[data-rendered='1']", state="attached")
    expect(page.locator("#map-canvas .map-node.focus .node-name")).to_have_text("payments")
    _clean(page_log)


def test_a_service_without_calls_says_so(
    logged_in_page: Page, page_log: PageLog, client: Any, ingest_token: str
) -> None:
    start = now_ns() - 120 * SECOND
    span = {"trace_id": secrets.token_hex(16), "span_id": secrets.token_hex(8), "name": "nightly", "kind": 1}
    response = post_otlp(
        client, otlp_request([{**span, "start": start, "end": start + 5 * MS}], service="batch"), ingest_token
    )
    assert response.status_code == 200, response.content
    roll_up()
    page = logged_in_page
    page.goto("/services/batch/")
    _ready(page)
    expect(page.locator("#upstream-empty")).to_have_text("No callers in this window.")
    expect(page.locator("#downstream-empty")).to_have_text("Calls nothing in this window.")
    expect(page.locator("#upstream-table")).to_be_hidden()
    expect(page.locator("#downstream-table")).to_be_hidden()
    _clean(page_log)
