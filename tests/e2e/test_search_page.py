"""The trace search page in a real browser: filters, chart, table, URL state, trace-ID jump, autocomplete, XSS."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.conftest import now_ns, otlp_request, post_otlp

pytestmark = pytest.mark.e2e

MS = 1_000_000
SECOND = 1_000_000_000
XSS = "<img src=x onerror=alert(1)>"
TARGET = "c0000000000000000000000000000001"  # checkout, tenant=acme, 600 ms: the one the filter test wants


def _trace(number: int) -> str:
    return f"{number:032x}"


# (trace id, service, root name, duration ms, tenant, error, child spans)
TRACES: list[tuple[str, str, str, int, str, bool, int]] = [
    (TARGET, "checkout", "POST /checkout", 600, "acme", False, 3),
    (_trace(2), "checkout", "POST /checkout", 20, "acme", False, 1),
    (_trace(3), "checkout", "POST /checkout", 900, "globex", True, 2),
    (_trace(4), "cart", "GET /cart", 450, "acme", False, 0),
    (_trace(5), "cart", "GET /cart", 35, "globex", True, 5),
    (_trace(6), "frontend", XSS, 120, "acme", False, 0),
]


@pytest.fixture
def stored(client: Any, ingest_token: str) -> int:
    """Six traces of the last minutes; children of a trace run in the `inventory` service."""
    now = now_ns()
    for index, (trace_id, service, name, duration, tenant, error, children) in enumerate(TRACES):
        start = now - (300 - index * 40) * SECOND
        root_id = f"{index + 1:02x}" * 8
        spans = [
            {
                "trace_id": trace_id,
                "span_id": root_id,
                "name": name,
                "start": start,
                "end": start + duration * MS,
                "attributes": {"tenant": tenant, "http.response.status_code": 500 if error else 200, "note": XSS},
                "error": error,
            }
        ]
        response = post_otlp(client, otlp_request(spans, service=service), ingest_token)
        assert response.status_code == 200, response.content
        if children:
            child_spans = [
                {
                    "trace_id": trace_id,
                    "span_id": f"{index + 1:02x}{child + 1:02x}" * 4,
                    "parent_span_id": root_id,
                    "name": "reserve",
                    "start": start + MS,
                    "end": start + 2 * MS,
                }
                for child in range(children)
            ]
            response = post_otlp(client, otlp_request(child_spans, service="inventory"), ingest_token)
            assert response.status_code == 200, response.content
    return now


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # One browser for the module (tests/conftest.py's `chromium_path` is function-scoped, hence the same check here).
    chromium_path = "/usr/bin/chromium"
    if not os.path.exists(chromium_path):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    browser = playwright.chromium.launch(
        executable_path=chromium_path,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, live_server: Any, client: Any, member: Any) -> Iterator[Page]:
    """A logged-in page (the member's session cookie: faster than the login form, which tests/e2e/test_pages.py
    covers); fails the test on page errors, dialogs or CSP violations of the search page."""
    client.force_login(member)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []

    def note(problem: str) -> None:
        # Only the search page's own problems: clicks lead on to the trace page, which has its own tests.
        if urlsplit(page.url).path == "/traces/":
            problems.append(problem)

    page.on("pageerror", lambda error: note(f"page error: {error}"))
    page.on("console", lambda m: note(m.text) if "Content Security Policy" in m.text else None)

    def on_dialog(dialog: Any) -> None:
        note(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()
    assert not problems, problems


def _results(page: Page) -> list[str]:
    """Trace IDs of the table rows, in display order, once the search finished."""
    page.wait_for_selector("#results-state[data-state=done], #results-state[data-state=empty]", state="attached")
    return page.locator("#results-body tr").evaluate_all("rows => rows.map(r => r.dataset.traceId)")


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_search_with_filters_shows_only_the_matching_traces(page: Page, stored: int) -> None:
    page.goto("/traces/")
    assert len(_results(page)) == len(TRACES)
    page.fill("#f-service", "checkout")
    page.fill("[name=attr] >> nth=0", "tenant=acme")
    page.fill("#f-min", "250ms")
    page.click("#search-button")
    page.wait_for_url(re.compile(r"service=checkout"))
    assert _results(page) == [TARGET]
    assert _query(page) == {
        "service": ["checkout"],
        "attr": ["tenant=acme"],
        "min_duration": ["250ms"],
        "lookback": ["1h"],
    }
    row = page.locator(f"#results-body tr[data-trace-id='{TARGET}']")
    expect(row.locator(".root-service")).to_have_text("checkout")
    expect(row.locator(".service-chip")).to_have_text(["checkout", "inventory"])
    expect(page.locator("#results-summary")).to_have_text("1 trace")


def test_operators_work_from_the_page(page: Page, stored: int) -> None:
    page.goto("/traces/?attr=http.response.status_code>=500&attr=tenant!=acme")
    assert set(_results(page)) == {_trace(3), _trace(5)}
    page.goto("/traces/?attr=http.route=~(")
    expect(page.locator(".field-error")).to_contain_text("invalid regular expression")
    expect(page.locator("#results-state")).to_have_attribute("data-state", "invalid")
    expect(page.locator("[name=attr].invalid")).to_have_value("http.route=~(")


def test_the_scatter_shows_every_trace_and_a_click_opens_it(page: Page, stored: int) -> None:
    page.goto("/traces/?service=checkout")
    assert len(_results(page)) == 3
    points = page.locator("#scatter .scatterlayer .point")
    expect(points).to_have_count(3)
    colors = points.evaluate_all("ps => ps.map(p => getComputedStyle(p).fill)")
    assert colors.count("rgb(201, 42, 42)") == 1, "the failing trace is red"
    # The slowest trace is the highest point (smallest y on screen).
    boxes = [points.nth(i).bounding_box() for i in range(3)]
    top = min(boxes, key=lambda box: box["y"] if box else 1e9)
    assert top
    page.mouse.move(top["x"] + top["width"] / 2, top["y"] + top["height"] / 2)
    expect(page.locator(".hoverlayer .hovertext")).to_contain_text("900 ms")
    page.mouse.click(top["x"] + top["width"] / 2, top["y"] + top["height"] / 2)
    page.wait_for_url(f"**/traces/{_trace(3)}/")


def test_box_select_narrows_the_time_range_in_the_url(page: Page, stored: int) -> None:
    page.goto("/traces/")
    assert len(_results(page)) == len(TRACES)
    points = page.locator("#scatter .scatterlayer .point")
    expect(points).to_have_count(len(TRACES))
    xs = sorted(box["x"] + box["width"] / 2 for box in (points.nth(i).bounding_box() for i in range(6)) if box)
    drag = page.locator("#scatter .nsewdrag").bounding_box()
    assert drag
    y = drag["y"] + drag["height"] / 2
    # From just before the 4th oldest point to past the newest: three traces.
    page.mouse.move((xs[2] + xs[3]) / 2, y)
    page.mouse.down()
    page.mouse.move(xs[-1] + 5, y, steps=8)
    page.mouse.up()
    page.wait_for_url(re.compile(r"start=.*end="))
    query = _query(page)
    assert "lookback" not in query
    assert query["start"][0].endswith("Z") and query["end"][0].endswith("Z")
    expect(page.locator("#results-body tr")).to_have_count(3)
    expect(page.locator("#f-start")).to_have_value(query["start"][0])
    expect(page.locator("#f-lookback")).to_have_value("")
    page.reload()
    assert len(_results(page)) == 3, "the narrowed range is in the URL"


def test_sorting_by_duration_reorders_the_rows_and_is_kept_in_the_url(page: Page, stored: int) -> None:
    page.goto("/traces/")
    by_start = _results(page)
    assert by_start == [trace[0] for trace in reversed(TRACES)], "newest first"
    durations = {trace[0]: trace[3] for trace in TRACES}
    page.click("button[data-sort=duration]")
    rows = page.locator("#results-body tr").evaluate_all("rows => rows.map(r => r.dataset.traceId)")
    assert rows == sorted(durations, key=lambda trace_id: -durations[trace_id])
    expect(page.locator("th:has(button[data-sort=duration])")).to_have_attribute("aria-sort", "descending")
    assert _query(page)["sort"] == ["-duration"]
    page.click("button[data-sort=duration]")
    rows = page.locator("#results-body tr").evaluate_all("rows => rows.map(r => r.dataset.traceId)")
    assert rows == sorted(durations, key=lambda trace_id: durations[trace_id])
    page.click("button[data-sort=spans]")
    first = page.locator("#results-body tr").first
    expect(first).to_have_attribute("data-trace-id", _trace(5))  # 6 spans
    # The bar of the slowest trace is full width.
    widths = page.locator("#results-body .duration-bar .fill").evaluate_all("els => els.map(e => e.style.width)")
    assert "100%" in widths


def test_the_url_carries_the_state_and_a_reload_restores_it(page: Page, stored: int, live_server: Any) -> None:
    page.goto("/traces/?service=cart&status=error&sort=-duration")
    assert _results(page) == [_trace(5)]
    url = page.url
    other = page.context.new_page()
    other.goto(url)
    assert _results(other) == [_trace(5)]
    expect(other.locator("#f-service")).to_have_value("cart")
    expect(other.locator("input[name=status][value=error]")).to_be_checked()
    expect(other.locator("th:has(button[data-sort=duration])")).to_have_attribute("aria-sort", "descending")
    other.close()


def test_the_trace_id_box_jumps_to_the_trace(page: Page, stored: int) -> None:
    page.goto("/traces/?lookback=15m")
    page.fill("#trace-id-input", TARGET.upper())
    page.press("#trace-id-input", "Enter")
    page.wait_for_url(f"**/traces/{TARGET}/")


def test_span_names_and_attributes_render_as_text(page: Page, stored: int) -> None:
    page.goto("/traces/?service=frontend")
    assert _results(page) == [_trace(6)]
    expect(page.locator("#results-body .root-name")).to_have_text(XSS)
    assert page.locator("#results-body img").count() == 0
    point = page.locator("#scatter .scatterlayer .point").first.bounding_box()
    assert point
    page.mouse.move(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
    expect(page.locator(".hoverlayer .hovertext")).to_contain_text(XSS)
    assert page.locator("#scatter img").count() == 0
    # Autocomplete shows stored attribute values as text too.
    page.fill("[name=attr] >> nth=0", "note=")
    page.focus("[name=attr] >> nth=0")
    expect(page.locator(".ac-list:visible .ac-option .ac-label")).to_have_text([XSS])
    assert page.locator(".ac-list img").count() == 0
    # The page fixture fails the test if a dialog opened.


def test_autocomplete_offers_stored_services_operations_and_attributes(page: Page, stored: int) -> None:
    page.goto("/traces/")
    page.click("#f-service")
    options = page.locator(".ac-list:visible .ac-option .ac-label")
    expect(options).to_have_text(["cart", "checkout", "frontend", "inventory"])
    page.keyboard.type("chec")
    expect(options).to_have_text(["checkout"])
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#f-service")).to_have_value("checkout")
    page.click("#f-operation")
    expect(options).to_have_text(["POST /checkout"])
    page.keyboard.press("Escape")
    attr = page.locator("[name=attr]").first
    attr.click()
    attr.type("ten")
    expect(options).to_have_text(["tenant"])
    options.first.dispatch_event("mousedown")
    expect(attr).to_have_value("tenant=")
    expect(options).to_have_text(["acme", "globex"])
    options.nth(1).dispatch_event("mousedown")
    expect(attr).to_have_value("tenant=globex")
    page.click("#add-attr")
    expect(page.locator("[name=attr]")).to_have_count(2)
    page.click("#search-button")
    page.wait_for_url(re.compile(r"attr=tenant%3Dglobex"))
    assert _results(page) == [_trace(3)]


def test_empty_and_error_states(page: Page, stored: int) -> None:
    page.goto("/traces/?service=nope")
    assert _results(page) == []
    expect(page.locator("#results-state")).to_contain_text("No traces match")
    expect(page.locator("#results-table")).to_be_hidden()
    search_api = re.compile(r"/api/v1/traces(\?.*)?$")
    page.route(
        search_api,
        lambda route: route.fulfill(status=503, content_type="application/json", body='{"error": "store is busy"}'),
    )
    page.goto("/traces/")
    expect(page.locator("#results-state[data-state=error]")).to_contain_text("store is busy")
    page.unroute(search_api)
    page.click("#results-state button")
    assert len(_results(page)) == len(TRACES)


@pytest.mark.skipif(not os.environ.get("SEARCH_SCREENSHOT"), reason="set SEARCH_SCREENSHOT=/path.png to take one")
def test_screenshot(page: Page, client: Any, ingest_token: str) -> None:
    """A denser, realistic result set for looking at the page (not an assertion)."""
    import random

    rng = random.Random(7)
    now = now_ns()
    services = ["frontend", "checkout", "cart", "payment", "inventory", "recommendation", "auth"]
    for _ in range(60):
        root = rng.choice(services[:3])
        start = now - rng.randint(10, 3500) * SECOND
        duration = int(rng.lognormvariate(4, 1) * MS)
        error = rng.random() < 0.12
        trace_id = f"{rng.getrandbits(128):032x}"
        spans = [
            {
                "trace_id": trace_id,
                "span_id": f"{rng.getrandbits(64):016x}",
                "name": rng.choice(["GET /cart", "POST /checkout", "GET /product/{id}", "POST /api/cart/items"]),
                "start": start,
                "end": start + duration,
                "error": error,
                "attributes": {"http.response.status_code": 500 if error else 200},
            }
        ]
        post_otlp(client, otlp_request(spans, service=root), ingest_token)
        for service in rng.sample(services[3:], rng.randint(0, 4)):
            children = [
                {
                    "trace_id": trace_id,
                    "span_id": f"{rng.getrandbits(64):016x}",
                    "parent_span_id": spans[0]["span_id"],
                    "name": "call",
                    "start": start + MS,
                    "end": start + 2 * MS,
                }
                for _ in range(rng.randint(1, 12))
            ]
            post_otlp(client, otlp_request(children, service=service), ingest_token)
    page.goto("/traces/?limit=40&attr=http.response.status_code>=200")
    _results(page)
    page.wait_for_timeout(300)
    path = os.environ["SEARCH_SCREENSHOT"]
    page.screenshot(path=path, full_page=True)
    stem = path.removesuffix(".png")
    page.screenshot(path=f"{stem}-top.png")
    page.click("#f-service")
    page.keyboard.type("a")
    page.locator(".ac-list:visible").wait_for()
    page.screenshot(path=f"{stem}-services.png", clip={"x": 0, "y": 0, "width": 720, "height": 560})
    page.keyboard.press("Escape")
    page.fill("#f-service", "")
    attr = page.locator("[name=attr]").first
    attr.fill("http.response.status_code>=")
    attr.focus()
    page.locator(".ac-list:visible .ac-option").first.wait_for()
    page.wait_for_timeout(100)
    page.screenshot(path=f"{stem}-autocomplete.png", clip={"x": 0, "y": 0, "width": 720, "height": 560})
    page.goto("/traces/?attr=http.route=~(&min_duration=fast&attr=x>y")
    page.screenshot(path=f"{stem}-errors.png", clip={"x": 0, "y": 0, "width": 1440, "height": 640})
