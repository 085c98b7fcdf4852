"""The service map page in a real browser: the graph a person sees, its clicks (services, calls, example traces),
the neighbourhood and compare filters, the calls table, and hostile service names."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from playwright.sync_api import Locator, Page, expect

from dashboards.models import TraceEdgeState
from dashboards.services import edges_rollup, rollups_compact
from tests.conftest import now_ns, otlp_request, post_otlp
from tests.e2e.conftest import PageLog

pytestmark = pytest.mark.e2e

MS = 1_000_000
SECOND = 1_000_000_000
XSS = "<img src=x onerror=alert(1)>"
SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL
DB = {"db.system": "postgresql", "db.name": "orders"}


def _span(
    trace: str, span_id: str, parent: str | None, name: str, start: int, ms: int, kind: int, **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "trace_id": trace,
        "span_id": span_id,
        "name": name,
        "start": start,
        "end": start + ms * MS,
        "kind": kind,
        **extra,
    }
    if parent:
        item["parent_span_id"] = parent
    return item


def shop(
    client: Any,
    token: str,
    *,
    count: int,
    ago_s: int,
    charge_ms: int = 10,
    charge_errors: int = 0,
    side_service: str | None = None,
) -> list[str]:
    """`count` traces, 10 ms apart from `ago_s` seconds ago: frontend GET /checkout (a root SERVER span) calls
    checkout POST /checkout, which calls payments POST /charge (`charge_ms` long; the first `charge_errors` fail),
    which INSERTs into the uninstrumented postgresql "orders". With `side_service`, frontend also calls that service.
    Each service's spans are posted on their own, as separate SDKs would. Returns the trace ids."""
    start = now_ns() - ago_s * SECOND
    spans: dict[str, list[dict[str, Any]]] = defaultdict(list)
    traces = []
    for index in range(count):
        trace = secrets.token_hex(16)
        traces.append(trace)
        ids = {key: secrets.token_hex(8) for key in ("fe", "fe_c", "co", "co_c", "pay", "db", "side_c", "side")}
        t = start + index * 10 * MS
        failed = index < charge_errors
        spans["frontend"] += [
            _span(trace, ids["fe"], None, "GET /checkout", t, charge_ms + 40, SERVER),
            _span(trace, ids["fe_c"], ids["fe"], "POST /checkout", t + MS, charge_ms + 20, CLIENT),
        ]
        spans["checkout"] += [
            _span(trace, ids["co"], ids["fe_c"], "POST /checkout", t + 2 * MS, charge_ms + 18, SERVER),
            _span(trace, ids["co_c"], ids["co"], "POST /charge", t + 3 * MS, charge_ms + 4, CLIENT, error=failed),
        ]
        spans["payments"] += [
            _span(trace, ids["pay"], ids["co_c"], "POST /charge", t + 4 * MS, charge_ms + 2, SERVER, error=failed),
            _span(trace, ids["db"], ids["pay"], "INSERT orders", t + 5 * MS, 1, CLIENT, attributes=DB),
        ]
        if side_service:
            at = t + (charge_ms + 25) * MS
            spans["frontend"].append(_span(trace, ids["side_c"], ids["fe"], "GET /side", at, 5, CLIENT))
            spans[side_service].append(_span(trace, ids["side"], ids["side_c"], "GET /side", at + MS, 3, SERVER))
    for service, items in spans.items():
        response = post_otlp(client, otlp_request(items, service=service), token)
        assert response.status_code == 200, response.content
    return traces


def roll_up() -> None:
    rollups_compact()
    edges_rollup(idle_seconds=0)


@pytest.fixture
def traffic(client: Any, ingest_token: str) -> list[str]:
    """20 shop traces five minutes ago; half the charges fail."""
    traces = shop(client, ingest_token, count=20, ago_s=300, charge_errors=10)
    roll_up()
    return traces


def ready(page: Page) -> None:
    page.wait_for_selector("#map-page[data-rendered='1']", state="attached")
    expect(page.locator("#map-page")).not_to_have_attribute("aria-busy", "true")


def node(page: Page, name: str) -> Locator:
    return page.locator("#map-canvas .map-node").filter(has=page.locator(".node-name").get_by_text(name, exact=True))


def edge(page: Page, source: str, target: str) -> Locator:
    return page.locator(f"#map-canvas .map-edge[data-source='{source}'][data-target='{target}']")


def centre_x(locator: Locator) -> float:
    box = locator.locator(".node-shape").bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2


def table_rows(page: Page) -> list[tuple[str, str]]:
    rows: list[list[str]] = page.locator("#edges-body tr").evaluate_all(
        "rows => rows.map(r => [r.cells[0].querySelector('a, .endpoint-name').textContent,"
        " r.cells[1].querySelector('a, .endpoint-name').textContent])"
    )
    return [(source, target) for source, target in rows]


def clean(page: Page, page_log: PageLog, live_server: Any) -> None:
    assert not page_log.page_errors, page_log.page_errors
    assert not page_log.dialogs, page_log.dialogs
    assert not page_log.console_errors, page_log.console_errors
    assert not page_log.foreign_requests(live_server.url), page_log.foreign_requests(live_server.url)


def iso_minutes_ago(minutes: int) -> str:
    moment = dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=minutes)
    return moment.replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


def test_it_draws_services_and_calls_left_to_right(
    logged_in_page: Page, page_log: PageLog, live_server: Any, traffic: list[str]
) -> None:
    page = logged_in_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto("/services/map/")
    ready(page)
    expect(page.locator("#map-state")).to_be_hidden()
    expect(page.get_by_role("heading", name="Service map")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Map")).to_have_attribute(
        "aria-current", "page"
    )

    # Every service and the uninstrumented database, labelled with its rate and error %.
    for name in ("frontend", "checkout", "payments", "postgresql orders"):
        expect(node(page, name)).to_be_visible()
    expect(node(page, "payments").locator(".node-stats")).to_have_text(re.compile(r"^\d+(\.\d+)?/min · 50\.0 %$"))
    expect(node(page, "frontend").locator(".node-stats")).to_have_text(re.compile(r"/min · 0 %$"))

    # Callers sit left of their callees.
    xs = [centre_x(node(page, name)) for name in ("frontend", "checkout", "payments", "postgresql orders")]
    assert xs == sorted(xs) and len(set(xs)) == 4, xs

    # Colour by error rate: payments fails half its requests, frontend none.
    expect(node(page, "payments")).to_have_class(re.compile(r"\berr-high\b"))
    expect(node(page, "frontend")).to_have_class(re.compile(r"\berr-ok\b"))
    expect(page.locator(".map-legend")).to_contain_text("≥ 5 %")

    # Services are links; the database is drawn as a virtual node of kind database, not a link.
    expect(node(page, "checkout")).to_have_attribute("href", "/services/checkout/")
    database = node(page, "postgresql orders")
    expect(database).to_have_class(re.compile(r"\bvirtual\b"))
    expect(database).not_to_have_attribute("href", re.compile(".*"))
    expect(database.locator(".node-kind")).to_have_text(re.compile("database"))
    expect(database.locator("title")).to_contain_text("not instrumented")

    # Calls: an arrowed path per caller -> callee, labelled rate · error % · p95.
    charge = edge(page, "checkout", "payments")
    expect(charge).to_have_count(1)
    expect(charge.locator(".edge-line")).to_have_attribute("marker-end", re.compile(r"url\(#map-arrow"))
    expect(charge.locator(".edge-label")).to_have_text(re.compile(r"^\d+(\.\d+)?/min · 50\.0 % · p95 \d+(\.\d)? ms$"))
    expect(charge).to_have_class(re.compile(r"\berr-high\b"))

    # The table lists the same calls; sorting by error % puts the failing one first.
    assert ("checkout", "payments") in table_rows(page)
    assert ("payments", "postgresql orders") in table_rows(page)
    page.locator("#edges-table").get_by_role("button", name="Error %").click()
    assert table_rows(page)[0] == ("checkout", "payments")
    assert parse_qs(urlsplit(page.url).query)["sort"] == ["-errors"]
    expect(page.locator("#map-lag")).to_be_hidden()
    expect(page.locator("#map-summary")).to_contain_text("3 services")
    clean(page, page_log, live_server)


def test_clicking_a_service_opens_its_page_with_the_time_range(
    logged_in_page: Page, page_log: PageLog, live_server: Any, traffic: list[str]
) -> None:
    page = logged_in_page
    page.goto("/services/map/?lookback=6h")
    ready(page)
    node(page, "payments").locator(".node-shape").click()
    page.wait_for_url(re.compile(r"/services/payments/\?lookback=6h$"))
    page.wait_for_selector("#service-page[data-rendered='1']", state="attached")
    expect(page.locator("#service-title")).to_have_text("payments")
    clean(page, page_log, live_server)


def test_a_call_opens_its_panel_and_an_example_opens_the_trace(
    logged_in_page: Page, page_log: PageLog, live_server: Any, traffic: list[str]
) -> None:
    page = logged_in_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto("/services/map/")
    ready(page)
    panel = page.locator("#edge-panel")
    expect(panel).to_be_hidden()
    edge(page, "checkout", "payments").locator(".edge-label").click()

    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-state", "done")
    expect(page.locator("#edge-title")).to_have_text("checkout → payments")
    expect(edge(page, "checkout", "payments")).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#edge-calls")).to_have_text("20 calls")
    expect(page.locator("#edge-errors")).to_have_text("50.0 %")
    expect(page.locator("#edge-error-count")).to_have_text("10 failed")
    for key in ("p50", "p95", "p99"):
        expect(page.locator(f"#edge-{key}")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    # Both sides are instrumented: the client vs server p95 and the gap between them.
    expect(page.locator("#edge-gap")).to_contain_text("server p95")
    expect(page.locator("#edge-gap")).to_contain_text("network/queue gap")

    examples = page.locator("#edge-examples li")
    expect(examples.first).to_be_visible()
    assert 1 <= examples.count() <= 20
    expect(page.locator("#edge-examples li.error").first).to_contain_text("error")
    link = page.locator("#edge-examples a.example-link").first
    href = link.get_attribute("href")
    assert href and re.fullmatch(r"/traces/[0-9a-f]{32}/\?span=[0-9a-f]{16}", href), href
    trace_id = urlsplit(href).path.split("/")[2]
    assert trace_id in traffic

    link.click()
    page.wait_for_url(re.compile(re.escape(href) + "$"))
    expect(page.locator("#trace-viewer[data-state=ready]")).to_have_count(1, timeout=15_000)
    # The trace's waterfall with the called span (payments' POST /charge) selected.
    expect(page.locator(".wf-row:not([hidden])")).to_have_count(6)
    expect(page.locator(".wf-row.selected .wf-name")).to_have_text("POST /charge")
    expect(page.get_by_role("complementary", name="Span details").get_by_role("heading")).to_have_text("POST /charge")
    clean(page, page_log, live_server)


def test_calls_and_services_work_from_the_keyboard(
    logged_in_page: Page, page_log: PageLog, live_server: Any, traffic: list[str]
) -> None:
    page = logged_in_page
    page.goto("/services/map/")
    ready(page)
    call = edge(page, "payments", "postgresql orders")
    expect(call).to_have_attribute("tabindex", "0")
    expect(call).to_have_attribute("role", "button")
    call.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#edge-title")).to_have_text("payments → postgresql orders")
    expect(page.locator("#edge-panel")).to_have_attribute("data-state", "done")
    # An uninstrumented callee has no server side to compare with.
    expect(page.locator("#edge-gap")).to_contain_text("Caller-observed latency only")
    page.keyboard.press("Escape")
    expect(page.locator("#edge-panel")).to_be_hidden()
    # The calls table opens the same panel.
    page.locator("#edges-body").get_by_role("button", name="Details of frontend → checkout").click()
    expect(page.locator("#edge-title")).to_have_text("frontend → checkout")
    page.get_by_role("button", name="Close the call details").click()
    expect(page.locator("#edge-panel")).to_be_hidden()

    node(page, "checkout").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/services/checkout/")
    clean(page, page_log, live_server)


def test_the_neighbourhood_filter_hides_services_further_away(
    logged_in_page: Page, page_log: PageLog, live_server: Any, traffic: list[str]
) -> None:
    page = logged_in_page
    page.goto("/services/map/?service=checkout&hops=1")
    ready(page)
    for name in ("frontend", "checkout", "payments"):
        expect(node(page, name)).to_be_visible()
    expect(node(page, "postgresql orders")).to_have_count(0)  # two hops from checkout
    expect(node(page, "checkout")).to_have_class(re.compile(r"\bfocus\b"))
    expect(page.locator("#map-service")).to_have_value("checkout")
    expect(page.locator("#map-hops")).to_have_value("1")
    assert any("/api/v1/service-map/?service=checkout&hops=1" in url for url in page_log.requests)

    # Two hops reach the database; the URL keeps the state.
    page.locator("#map-hops").select_option("2")
    page.wait_for_url(re.compile(r"hops=2"))
    expect(node(page, "postgresql orders")).to_be_visible()

    # Every service is offered, and "All services" drops the filter.
    options = page.locator("#map-service option").all_text_contents()
    assert options[0] == "All services" and {"checkout", "frontend", "payments"} <= set(options), options
    page.locator("#map-service").select_option("")
    page.wait_for_url(re.compile(r"/services/map/$"))
    expect(page.locator("#map-hops")).to_be_disabled()
    expect(node(page, "postgresql orders")).to_be_visible()

    # Back restores the neighbourhood.
    page.go_back()
    expect(page.locator("#map-service")).to_have_value("checkout")
    expect(page.locator("#map-hops")).to_have_value("2")
    clean(page, page_log, live_server)


def test_compare_mode_marks_the_call_that_got_slower(
    logged_in_page: Page, page_log: PageLog, live_server: Any, client: Any, ingest_token: str
) -> None:
    shop(client, ingest_token, count=15, ago_s=30 * 60, charge_ms=10)
    shop(client, ingest_token, count=15, ago_s=10 * 60, charge_ms=120)
    roll_up()
    at = iso_minutes_ago(20)
    page = logged_in_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"/services/map/?lookback=1h&compare_at={at}Z")
    ready(page)

    slower = edge(page, "checkout", "payments")
    expect(slower).to_have_class(re.compile(r"\bslower\b"))
    expect(slower.locator(".edge-badge")).to_have_text("slower")
    expect(edge(page, "payments", "postgresql orders")).not_to_have_class(re.compile(r"\bchanged\b"))
    expect(node(page, "payments")).to_have_class(re.compile(r"\bslower\b"))
    expect(node(page, "payments").locator(".node-badge")).to_have_text("slower")

    changes = page.locator("#map-changes")
    expect(changes).to_be_visible()
    item = page.locator("#changes-list li").filter(has_text="checkout → payments")
    expect(item).to_contain_text(re.compile(r"checkout → payments: p95 \d+(\.\d)? ms → \d+(\.\d)? ms"))
    expect(page.locator("#changes-list li").filter(has_text="postgresql")).to_have_count(0)
    expect(page.locator("#map-compare")).to_have_value(at)
    expect(page.locator("#edges-body tr.changed")).not_to_have_count(0)

    # A changed call opens its panel from the list.
    item.get_by_role("button", name="checkout → payments").click()
    expect(page.locator("#edge-title")).to_have_text("checkout → payments")

    # Clear leaves compare mode.
    page.get_by_role("button", name="Clear").click()
    page.wait_for_url(re.compile(r"^(?!.*compare_at)"))
    expect(changes).to_be_hidden()
    expect(page.locator("#map-canvas .map-edge.changed")).to_have_count(0)

    # Picking a time in the field compares again.
    page.locator("#map-compare").fill(at)
    page.wait_for_url(re.compile(r"compare_at="))
    assert parse_qs(urlsplit(page.url).query)["compare_at"] == [f"{at}Z"]
    expect(edge(page, "checkout", "payments")).to_have_class(re.compile(r"\bslower\b"))
    clean(page, page_log, live_server)


def test_compare_mode_says_when_nothing_changed(
    logged_in_page: Page, page_log: PageLog, live_server: Any, client: Any, ingest_token: str
) -> None:
    shop(client, ingest_token, count=10, ago_s=30 * 60)
    shop(client, ingest_token, count=10, ago_s=10 * 60)
    roll_up()
    page = logged_in_page
    page.goto(f"/services/map/?compare_at={iso_minutes_ago(20)}Z")
    ready(page)
    expect(page.locator("#changes-empty")).to_be_visible()
    expect(page.locator("#changes-empty")).to_contain_text("Nothing got slower or started failing more")
    expect(page.locator("#map-canvas .map-edge.changed")).to_have_count(0)
    clean(page, page_log, live_server)


def test_a_compare_time_outside_the_window_shows_the_api_error(
    logged_in_page: Page, page_log: PageLog, traffic: list[str]
) -> None:
    page = logged_in_page
    page.goto(f"/services/map/?lookback=15m&compare_at={iso_minutes_ago(120)}Z")
    state = page.locator("#map-state")
    expect(state).to_have_attribute("data-state", "error")
    expect(state).to_contain_text("Could not load the service map:")
    expect(state).to_contain_text("compare_at")
    expect(state.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.locator("#map-layout")).to_be_hidden()
    assert not page_log.page_errors and not page_log.dialogs


def test_an_answer_cut_short_shows_an_error_with_retry(
    logged_in_page: Page, page_log: PageLog, traffic: list[str]
) -> None:
    """A proxy that drops the connection mid-body (or a load aborted while its body streams in) must not be taken
    for an empty answer: that used to throw inside the page."""
    page = logged_in_page
    cut = {"active": True}

    def truncate(route: Any) -> None:
        if cut["active"]:
            route.fulfill(status=200, content_type="application/json", body='{"nodes": [{"id": "front')
        else:
            route.continue_()

    page.route(re.compile(r"/api/v1/service-map/\?"), truncate)
    page.goto("/services/map/?lookback=15m")
    state = page.locator("#map-state")
    expect(state).to_have_attribute("data-state", "error")
    expect(state).to_contain_text("could not be read")
    cut["active"] = False
    state.get_by_role("button", name="Retry").click()
    ready(page)
    expect(node(page, "payments")).to_be_visible()
    assert not page_log.page_errors, page_log.page_errors


def test_an_empty_window_says_so(logged_in_page: Page, page_log: PageLog, live_server: Any) -> None:
    page = logged_in_page
    page.goto("/services/map/?lookback=15m")
    ready(page)
    state = page.locator("#map-state")
    expect(state).to_have_attribute("data-state", "empty")
    expect(state).to_contain_text("No calls between services in this window")
    expect(state.locator(".empty-hint")).to_contain_text("once their traces have finished")
    expect(page.locator("#map-layout")).to_be_hidden()
    expect(page.locator("#edges-card")).to_be_hidden()
    clean(page, page_log, live_server)


def test_a_hostile_service_name_renders_as_text(
    logged_in_page: Page, page_log: PageLog, live_server: Any, client: Any, ingest_token: str
) -> None:
    shop(client, ingest_token, count=3, ago_s=120, side_service=XSS)
    roll_up()
    page = logged_in_page
    page.goto("/services/map/")
    ready(page)
    hostile = page.locator(f"#map-canvas .map-node[data-node='{XSS}']")
    expect(hostile).to_have_count(1)
    expect(hostile.locator("title")).to_contain_text(XSS)
    expect(hostile.locator(".node-name")).to_have_text(XSS[:25] + "…")
    expect(hostile).to_have_attribute("href", f"/services/{quote(XSS, safe='()')}/")
    row = page.locator("#edges-body tr").filter(has_text="<img")
    expect(row.locator("td").nth(1).locator("a")).to_have_text(XSS)
    expect(page.locator("#map-service option", has_text="<img")).to_have_text(XSS)
    expect(page.locator("#map-page img")).to_have_count(0)

    edge(page, "frontend", XSS).locator(".edge-label").click()
    expect(page.locator("#edge-title")).to_have_text(f"frontend → {XSS}")
    hostile.locator(".node-shape").click()
    page.wait_for_url(re.compile(r"/services/%3Cimg"))
    page.wait_for_selector("#service-page[data-rendered='1']", state="attached")
    expect(page.locator("#service-title")).to_have_text(XSS)
    clean(page, page_log, live_server)


def test_the_services_page_links_to_the_map(
    logged_in_page: Page, page_log: PageLog, live_server: Any, traffic: list[str]
) -> None:
    page = logged_in_page
    page.goto("/services/?lookback=6h")
    page.wait_for_selector("#service-map-link[href$='lookback=6h']", state="attached")
    page.get_by_role("link", name="Service map").click()
    page.wait_for_url(re.compile(r"/services/map/\?lookback=6h$"))
    ready(page)
    expect(page.locator("#range-picker input[value='6h']")).to_be_checked()
    expect(node(page, "checkout")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Map")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Services")).not_to_have_attribute("aria-current", "page")
    clean(page, page_log, live_server)


def test_the_lag_notice_shows_when_calls_wait_to_be_paired(
    logged_in_page: Page, page_log: PageLog, live_server: Any, client: Any, ingest_token: str, traffic: list[str]
) -> None:
    shop(client, ingest_token, count=2, ago_s=60)
    rollups_compact()  # the new traces wait for pairing
    TraceEdgeState.objects.filter(pending=True).update(last_seen=dt.datetime.now(tz=dt.UTC) - dt.timedelta(seconds=75))
    page = logged_in_page
    page.goto("/services/map/")
    ready(page)
    expect(page.locator("#map-lag")).to_be_visible()
    expect(page.locator("#map-lag")).to_have_text(re.compile(r"^map trails ingest by (7[5-9]|8\d) s$"))
    expect(node(page, "checkout")).to_be_visible()
    clean(page, page_log, live_server)


def test_services_whose_calls_are_not_paired_yet_show_with_a_notice(
    logged_in_page: Page, page_log: PageLog, live_server: Any, client: Any, ingest_token: str
) -> None:
    shop(client, ingest_token, count=3, ago_s=60)
    rollups_compact()  # requests are rolled up; the traces still wait to be paired into calls
    page = logged_in_page
    page.goto("/services/map/")
    ready(page)
    state = page.locator("#map-state")
    expect(state).to_have_attribute("data-state", "empty")
    expect(state).to_contain_text("No calls between services in this window")
    expect(state.locator(".empty-hint")).to_contain_text("The map trails ingest by about")
    for name in ("frontend", "checkout", "payments"):
        expect(node(page, name)).to_be_visible()
    expect(page.locator("#map-canvas .map-edge")).to_have_count(0)
    expect(page.locator("#edges-card")).to_be_hidden()
    clean(page, page_log, live_server)


def _calls(client: Any, token: str, calls: list[tuple[str, str, int]], *, ago_s: int) -> None:
    """For each (caller, callee, n): n traces of caller's root SERVER span calling callee (CLIENT -> SERVER)."""
    start = now_ns() - ago_s * SECOND
    spans: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for caller, callee, n in calls:
        for index in range(n):
            trace = secrets.token_hex(16)
            root, out, served = (secrets.token_hex(8) for _ in range(3))
            t = start + index * 10 * MS
            spans[caller] += [
                _span(trace, root, None, f"GET /{callee}", t, 30, SERVER),
                _span(trace, out, root, f"GET /{callee}", t + MS, 20, CLIENT),
            ]
            spans[callee].append(_span(trace, served, out, f"GET /{callee}", t + 2 * MS, 15, SERVER))
    for service, items in spans.items():
        assert post_otlp(client, otlp_request(items, service=service), token).status_code == 200


_CROSSINGS_JS = """() => {
    const nodes = [...document.querySelectorAll('.map-node')]
        .map((n) => [n.dataset.node, n.querySelector('.node-shape').getBoundingClientRect()]);
    const out = [];
    for (const edge of document.querySelectorAll('.map-edge')) {
        const line = edge.querySelector('.edge-line');
        const matrix = line.getScreenCTM();
        for (let at = 0; at <= line.getTotalLength(); at += 4) {
            const local = line.getPointAtLength(at);
            const p = new DOMPoint(local.x, local.y).matrixTransform(matrix);
            for (const [name, box] of nodes) {
                if (name === edge.dataset.source || name === edge.dataset.target) continue;
                const inside = p.x > box.left && p.x < box.right && p.y > box.top && p.y < box.bottom;
                if (inside) out.push(`${edge.dataset.source} -> ${edge.dataset.target} through ${name}`);
            }
        }
    }
    return [...new Set(out)];
}"""


def test_call_labels_never_cover_a_service_or_its_caption(
    logged_in_page: Page, page_log: PageLog, live_server: Any, client: Any, ingest_token: str
) -> None:
    # A chain with calls that skip layers: their labels sit mid-way, in the column of the services they pass.
    names = ["gateway", "orders", "pricing", "stock", "ledger"]
    calls = [(a, b, 40 - 3 * i - j) for i, a in enumerate(names) for j, b in enumerate(names) if i < j]
    _calls(client, ingest_token, calls, ago_s=120)
    roll_up()
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/services/map/")
    ready(page)
    # Every caller is also called by `clients` (its root spans); ledger only serves.
    expect(page.locator("#map-canvas .map-edge")).to_have_count(len(calls) + len(names) - 1)
    overlaps = page.evaluate(
        """() => {
        const boxes = (selector) => [...document.querySelectorAll(selector)].map((e) => [e, e.getBoundingClientRect()]);
        const nodes = boxes('.map-node .node-shape, .map-node .node-name, .map-node .node-stats');
        const labels = boxes('.map-edge:not(.label-folded) .edge-label');
        const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
        return labels.flatMap(([label, box]) => nodes.filter(([, other]) => hit(box, other))
            .map(([part]) => label.textContent + ' over ' + part.closest('.map-node').dataset.node));
    }"""
    )
    assert overlaps == [], overlaps
    # No call is drawn through a service it does not connect (it would hide behind it and read as two calls).
    crossings = page.evaluate(_CROSSINGS_JS)
    assert crossings == [], crossings
    shown = page.locator("#map-canvas .map-edge:not(.label-folded) .edge-label")
    assert shown.count() >= len(names) - 1, "the busiest calls keep their labels"
    clean(page, page_log, live_server)
