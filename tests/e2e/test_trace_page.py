"""The trace page in a real browser: what a person sees in the waterfall, the details, the views and the toolbar."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import PageLog
from tests.e2e.trace_data import XSS, shop_trace, tree_trace

pytestmark = pytest.mark.e2e


def open_trace(page: Page, trace_id: str, query: str = "", *, timeout: float = 15_000) -> None:
    page.goto(f"/traces/{trace_id}/{query}")
    expect(page.locator("#trace-viewer[data-state=ready]")).to_have_count(1, timeout=timeout)


def rows(page: Page) -> Locator:
    return page.locator(".wf-row:not([hidden])")


def row(page: Page, name: str) -> Locator:
    return rows(page).filter(has=page.locator(".wf-name").get_by_text(name, exact=True))


def details(page: Page) -> Locator:
    return page.get_by_role("complementary", name="Span details")


def bar_left(page: Page, name: str) -> float:
    box = row(page, name).locator(".wf-bar").bounding_box()
    assert box is not None
    return box["x"]


@pytest.fixture
def shop(project: Any) -> str:
    return shop_trace(project)


def test_opening_a_trace_shows_its_header_and_span_rows(logged_in_page: Page, shop: str, page_log: PageLog) -> None:
    page = logged_in_page
    open_trace(page, shop)

    header = page.locator(".trace-header")
    expect(header.get_by_role("heading")).to_contain_text("GET /checkout")
    expect(header.locator("dd[data-fill=spans]")).to_have_text("19")
    expect(header.locator("dd[data-fill=depth]")).to_have_text("4")
    expect(header.get_by_role("link", name="Download OTLP JSON")).to_have_attribute(
        "href", f"/api/v1/traces/{shop}/export?format=otlp"
    )
    expect(row(page, "GET /checkout")).to_be_visible()
    expect(row(page, "recommend")).to_be_visible()
    expect(row(page, "SELECT orders")).to_have_count(12)
    expect(row(page, "GET /checkout").locator(".wf-dur")).to_have_text("100 ms")
    expect(row(page, XSS).locator(".wf-err")).to_be_visible()
    assert page_log.page_errors == []


def test_collapsing_hides_descendants_and_expanding_shows_them(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)
    recs = row(page, "GET /recs")

    recs.get_by_role("button", name="Collapse").click()
    expect(row(page, "recommend")).to_have_count(0)
    expect(row(page, "SELECT items")).to_have_count(0)
    expect(recs.locator(".wf-more")).to_have_text("+2")

    recs.get_by_role("button", name="Expand").click()
    expect(row(page, "recommend")).to_be_visible()
    expect(row(page, "SELECT items")).to_be_visible()

    page.get_by_role("button", name="Collapse all").click()
    expect(rows(page)).to_have_count(2)  # the root, and the "missing parent" marker
    page.get_by_role("button", name="Expand all").click()
    expect(rows(page)).to_have_count(20)


def test_keyboard_moves_collapses_and_opens_details(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)
    tree = page.get_by_role("tree")
    tree.focus()
    tree.press("ArrowDown")  # the root
    tree.press("ArrowLeft")  # collapse it
    expect(row(page, "GET /recs")).to_have_count(0)
    tree.press("ArrowRight")  # expand again
    expect(row(page, "GET /recs")).to_be_visible()
    for _ in range(3):  # the error span, GET /recs, recommend
        tree.press("ArrowDown")
    tree.press("Enter")
    expect(details(page).get_by_role("heading")).to_have_text("recommend")


def test_clicking_a_span_shows_its_attributes_resource_and_events(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)

    row(page, "recommend").click()

    panel = details(page)
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading")).to_have_text("recommend")
    expect(panel.locator(".sd-kv tr", has_text="model.version")).to_contain_text("v7")
    expect(panel.locator(".sd-kv tr", has_text="host.name")).to_contain_text("rec-1")
    expect(panel.locator(".sd-events li")).to_contain_text("cache miss")
    expect(panel.locator(".sd-events .sd-event-time")).to_have_text("+5.00 ms")
    expect(panel.locator("dd", has_text="ms").first).to_be_visible()
    expect(panel).to_contain_text("Self time")
    assert "span=0303030303030303" in page.url
    panel.get_by_role("button", name="Close span details").click()
    expect(panel).to_be_hidden()


def test_a_link_to_a_stored_trace_jumps_to_its_span(logged_in_page: Page, project: Any) -> None:
    page = logged_in_page
    target = shop_trace(project)
    source = shop_trace(project, linked_trace=target)
    open_trace(page, source)

    row(page, "GET /checkout").click()
    details(page).get_by_role("link", name="Open linked trace").click()

    expect(page).to_have_url(re.compile(f"/traces/{target}/\\?span=0101010101010101"))
    expect(page.locator("#trace-viewer[data-state=ready]")).to_have_count(1)
    expect(details(page).get_by_role("heading")).to_have_text("GET /checkout")


def test_critical_path_is_drawn_and_can_be_shown_alone(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)
    expect(row(page, "GET /checkout").locator(".wf-crit").first).to_be_visible()
    expect(row(page, "audit log").locator(".wf-crit:not([hidden])")).to_have_count(0)

    page.get_by_label("Critical path only").check()

    expect(row(page, "audit log")).to_have_count(0)
    expect(row(page, "GET /checkout")).to_be_visible()
    expect(row(page, "recommend")).to_be_visible()
    row(page, "recommend").click()
    expect(details(page)).to_contain_text("of the critical path")

    page.get_by_label("Critical path only").uncheck()
    expect(row(page, "audit log")).to_be_visible()


def test_clock_skew_is_adjusted_by_default_and_raw_times_can_be_shown(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)
    skew = page.get_by_label("Adjust clock skew")
    expect(skew).to_be_checked()
    adjusted_left = bar_left(page, "recommend")
    recs_left = bar_left(page, "GET /recs")
    assert adjusted_left > recs_left, "adjusted: the server span sits inside its client parent"
    row(page, "recommend").click()
    expect(details(page).locator(".sd-skew")).to_have_text("adjusted by \u2212240 ms")

    skew.uncheck()

    expect(details(page).locator(".sd-raw")).to_have_text("raw timestamps (clock-skew adjustment is off)")
    expect(page).to_have_url(re.compile(r"raw=1"))
    raw_left = bar_left(page, "recommend")
    assert raw_left > adjusted_left + 100, "raw: 250 ms later, far to the right"

    page.reload()
    expect(page.locator("#trace-viewer[data-state=ready]")).to_have_count(1)
    expect(page.get_by_label("Adjust clock skew")).not_to_be_checked()
    assert abs(bar_left(page, "recommend") - raw_left) < 2


def test_find_highlights_matches_counts_them_and_keeps_them_in_the_url(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)
    find = page.get_by_label("Find spans")

    find.fill("SELECT")
    expect(page.locator(".tv-find-count")).to_have_text("1 of 13")
    expect(page.locator(".wf-row.match")).to_have_count(13)
    expect(page.locator(".wf-row.match.current .wf-name")).to_have_text("SELECT items")  # first in tree order
    expect(page).to_have_url(re.compile(r"find=SELECT"))
    page.get_by_role("button", name="Next match").click()
    expect(page.locator(".tv-find-count")).to_have_text("2 of 13")

    find.fill("SELECT -orders")
    expect(page.locator(".tv-find-count")).to_have_text("1 of 1")
    expect(page.locator(".wf-row.match .wf-name")).to_have_text("SELECT items")

    find.fill("rec-1")  # a resource attribute value
    expect(page.locator(".tv-find-count")).to_have_text("1 of 3")

    find.fill('"db.statement=select * from orders where id = 7"')  # a quoted key=value phrase, any case
    expect(page.locator(".tv-find-count")).to_have_text("1 of 1")

    page.goto(f"/traces/{shop}/?find=postgresql")
    expect(page.get_by_label("Find spans")).to_have_value("postgresql")
    expect(page.locator(".tv-find-count")).to_have_text("1 of 13")


def test_statistics_flame_graph_and_repeated_views(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)

    page.get_by_role("tab", name="Statistics").click()
    stats = page.get_by_role("tabpanel", name="Statistics")
    orders = stats.locator("tr", has_text="SELECT orders")
    expect(orders.locator("td").nth(2)).to_have_text("12")
    expect(stats.get_by_role("columnheader", name="% of trace")).to_be_visible()

    page.get_by_role("tab", name="Flame graph").click()
    canvas = page.get_by_role("img", name="Flame graph")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box and box["width"] > 300
    # Top frame: all spans (the trace has orphans, so two trees); below it the root operation, widest first.
    page.mouse.move(box["x"] + 30, box["y"] + 28)
    expect(page.locator(".fg-tip")).to_contain_text("frontend: GET /checkout")
    expect(page.locator(".fg-tip")).to_contain_text("1 span")
    page.mouse.click(box["x"] + 30, box["y"] + 28)
    expect(page.get_by_role("button", name="Reset zoom")).to_be_visible()

    page.get_by_role("tab", name="Repeated spans").click()
    repeated = page.get_by_role("tabpanel", name="Repeated spans")
    group = repeated.locator("tr", has_text="SELECT orders")
    expect(group).to_contain_text("12\u00d7")
    expect(group).to_contain_text("N+1")
    group.click()

    expect(page.get_by_role("tabpanel", name="Waterfall")).to_be_visible()
    expect(page.locator(".wf-row.marked")).to_have_count(12)
    expect(row(page, "GET /checkout").locator(".wf-badge")).to_have_text("12\u00d7 SELECT orders")


def test_orphans_render_under_a_missing_parent_row(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)
    marker = rows(page).filter(has_text="missing parent")
    expect(marker).to_contain_text("ffffffffffffffff never arrived")
    marker_box = marker.bounding_box()
    orphan_box = row(page, "orphaned work").bounding_box()
    assert marker_box and orphan_box and orphan_box["y"] == marker_box["y"] + 24


def test_a_span_named_like_markup_is_shown_as_text(logged_in_page: Page, shop: str, page_log: PageLog) -> None:
    page = logged_in_page
    open_trace(page, shop)

    xss_row = row(page, XSS)
    expect(xss_row).to_be_visible()
    xss_row.click()
    expect(details(page).get_by_role("heading")).to_have_text(XSS)
    expect(details(page).locator(".sd-status-message")).to_have_text(" <b>boom</b>")
    expect(details(page).locator(".sd-kv th", has_text=XSS)).to_be_visible()

    assert page.locator("#trace-viewer img, #trace-viewer b").count() == 0
    page.wait_for_timeout(300)
    assert page_log.dialogs == []


def test_deep_link_scrolls_to_and_opens_a_span_deep_in_a_big_trace(logged_in_page: Page, project: Any) -> None:
    page = logged_in_page
    trace_id, span_ids = tree_trace(project, spans=2500)
    target = span_ids[-1]

    open_trace(page, trace_id, f"?span={target}")

    expect(details(page).get_by_role("heading")).to_have_text("op-2499")
    target_row = page.locator(".wf-row.selected")
    expect(target_row.locator(".wf-name")).to_have_text("op-2499")
    scroller = page.get_by_role("tree").bounding_box()
    box = target_row.bounding_box()
    assert (
        scroller
        and box
        and scroller["y"] <= box["y"]
        and box["y"] + box["height"] <= scroller["y"] + scroller["height"]
    )
    assert page.get_by_role("tree").evaluate("el => el.scrollTop") > 10_000


def test_the_minimap_zooms_the_time_axis(logged_in_page: Page, shop: str) -> None:
    page = logged_in_page
    open_trace(page, shop)
    first_tick = page.locator(".wf-tick-label.t0")
    expect(first_tick).to_have_text("0 ns")
    recs_bar = row(page, "GET /recs").locator(".wf-bar")
    width_before = recs_bar.bounding_box()["width"]  # type: ignore[index]
    box = page.locator(".mm-overlay").bounding_box()
    assert box
    # Drag across 10%..30% of the map: the waterfall shows 28..84 ms of the 280 ms trace.
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 20, steps=5)
    page.mouse.up()

    expect(first_tick).to_have_text(re.compile(r"^2\d\.\d ms$"))
    assert recs_bar.bounding_box()["width"] > 3 * width_before  # type: ignore[index]
    page.get_by_role("button", name="Reset zoom").click()
    expect(first_tick).to_have_text("0 ns")
    assert abs(recs_bar.bounding_box()["width"] - width_before) < 2  # type: ignore[index]


def test_unknown_and_malformed_trace_ids_get_friendly_pages(logged_in_page: Page) -> None:
    page = logged_in_page
    response = page.goto("/traces/" + "ab" * 16 + "/")
    assert response and response.status == 404
    expect(page.get_by_role("heading", name="Trace not found")).to_be_visible()
    expect(page.locator("main")).to_contain_text("ab" * 16)

    response = page.goto("/traces/not-a-trace-id/")
    assert response and response.status == 400
    expect(page.get_by_role("heading", name="That is not a trace ID")).to_be_visible()
    expect(page.locator("main")).to_contain_text("32 hexadecimal characters")


def test_a_100000_span_trace_opens_and_scrolls(logged_in_page: Page, project: Any) -> None:
    page = logged_in_page
    trace_id, _span_ids = tree_trace(project, spans=100_000)
    started = time.perf_counter()

    open_trace(page, trace_id, timeout=120_000)

    expect(row(page, "op-0")).to_be_visible()
    opened = time.perf_counter() - started
    print(f"100,000-span trace: rows visible {opened:.1f}s after navigation (live_server, test machine)")
    # Virtualized: a screenful of rows exists in the DOM, not one per span.
    assert page.locator(".wf-row").count() < 200
    tree = page.get_by_role("tree")
    tree.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    # The last row in tree order: follow the last child (ids 8k+1..8k+8) down from the root.
    last = 0
    while 8 * last + 1 < 100_000:
        last = min(8 * last + 8, 99_999)
    expect(row(page, f"op-{last}")).to_be_visible()
    tree.evaluate("el => { el.scrollTop = el.scrollHeight / 2; }")
    expect(rows(page).first).to_be_visible()
    assert page.locator(".wf-row").count() < 200
