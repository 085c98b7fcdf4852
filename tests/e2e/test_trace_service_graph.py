"""The Services tab of the trace page: the graph of the services one trace touched, in a real browser."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from playwright.sync_api import Page, expect

from tests.conftest import now_ns, otlp_request
from tests.e2e.conftest import PageLog
from tests.e2e.trace_data import XSS, store

pytestmark = pytest.mark.e2e

MS = 1_000_000


def _span(trace_id: str, span_id: int, parent: int | None, name: str, start: int, ms: int, **extra: Any) -> dict:
    item: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": f"{span_id:016x}",
        "name": name,
        "start": start,
        "end": start + ms * MS,
        **extra,
    }
    if parent is not None:
        item["parent_span_id"] = f"{parent:016x}"
    return item


def graph_trace(project: Any) -> str:
    """frontend GET /checkout (root) calls cart twice (one fails), postgresql "shop" three times, kafka "orders"
    once, and the XSS-named service through an uninstrumented client (a parent-child edge)."""
    trace_id = secrets.token_hex(16)
    t = now_ns() - 30 * 10**9
    client, producer = Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_PRODUCER
    frontend = [_span(trace_id, 1, None, "GET /checkout", t, 200)]
    cart = []
    for k in range(2):
        frontend.append(_span(trace_id, 10 + k, 1, "GET /cart", t + (10 + 30 * k) * MS, 20, kind=client))
        cart.append(_span(trace_id, 20 + k, 10 + k, "GET /cart", t + (11 + 30 * k) * MS, 18, error=k == 1))
    db = {"db.system": "postgresql", "db.name": "shop"}
    for k in range(3):
        frontend.append(_span(trace_id, 30 + k, 1, "SELECT", t + (80 + 5 * k) * MS, 3, kind=client, attributes=db))
    queue = {"messaging.system": "kafka", "messaging.destination.name": "orders"}
    frontend.append(_span(trace_id, 40, 1, "orders publish", t + 100 * MS, 2, kind=producer, attributes=queue))
    weird = [_span(trace_id, 50, 1, "handle", t + 120 * MS, 30)]
    store(project, otlp_request(frontend, service="frontend"))
    store(project, otlp_request(cart, service="cart"))
    store(project, otlp_request(weird, service=XSS))
    return trace_id


def open_services(page: Page, trace_id: str) -> None:
    page.goto(f"/traces/{trace_id}/")
    expect(page.locator("#trace-viewer[data-state=ready]")).to_have_count(1, timeout=15_000)
    page.get_by_role("tab", name="Services").click()
    expect(page.locator(".sg-svg")).to_be_visible()


def test_services_tab_draws_nodes_edges_and_call_counts(logged_in_page: Page, project: Any, page_log: PageLog) -> None:
    page = logged_in_page
    trace_id = graph_trace(project)
    open_services(page, trace_id)

    expect(page.get_by_role("tab", name="Services")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", name="Waterfall")).to_have_attribute("aria-selected", "false")
    expect(page.locator("#tv-panel-waterfall")).to_be_hidden()
    nodes = page.locator(".sg-node")
    expect(nodes).to_have_count(6)
    for name in ("clients", "frontend", "cart", "postgresql shop", "kafka orders"):
        expect(page.locator(".sg-node").filter(has_text=name)).to_be_visible()
    expect(page.locator(".sg-node.sg-kind-database")).to_contain_text("postgresql shop")
    expect(page.locator(".sg-node.sg-kind-messaging")).to_contain_text("kafka orders")
    expect(page.locator(".sg-node.sg-kind-clients")).to_have_count(1)

    edges = page.locator(".sg-edge")
    expect(edges).to_have_count(5)
    labels = page.locator(".sg-edge-label")
    expect(labels.filter(has_text="3\u00d7")).to_have_count(1)  # frontend -> postgresql shop
    cart_label = labels.filter(has_text="2\u00d7")
    expect(cart_label).to_have_count(1)
    expect(cart_label.locator(".sg-errors")).to_have_text("1 err")
    color = cart_label.locator(".sg-errors").evaluate("el => getComputedStyle(el).fill")
    assert color.startswith("rgb(") and color != "rgb(0, 0, 0)"

    # "clients" is the leftmost node, frontend right of it, cart right of frontend.
    def left(selector: str) -> float:
        box = page.locator(selector).locator(".sg-box").bounding_box()
        assert box is not None
        return box["x"]

    assert left('.sg-node[data-node="clients"]') < left('.sg-node[data-node="frontend"]')
    assert left('.sg-node[data-node="frontend"]') < left('.sg-node[data-node="cart"]')

    # Clicking a node tells about it and finds its spans in the waterfall.
    page.locator('.sg-node[data-node="cart"]').click()
    info = page.locator(".sg-info")
    expect(info).to_contain_text("cart")
    expect(info).to_contain_text("2 calls in")
    expect(info).to_contain_text("1 failed")
    info.get_by_role("button", name="Find its spans in the waterfall").click()
    expect(page.locator("#tv-panel-waterfall")).to_be_visible()
    expect(page.locator("#tv-panel-services")).to_be_hidden()
    expect(page.get_by_role("tab", name="Services")).to_have_attribute("aria-selected", "false")
    expect(page.locator(".tv-find")).to_have_value('"cart"')
    expect(page.locator(".tv-find-count")).to_have_text("1 of 4")  # 2 client + 2 server spans say "cart"

    # The tab comes back, and remembers itself in the URL.
    page.get_by_role("tab", name="Services").click()
    expect(page.locator("#tv-panel-services")).to_be_visible()
    assert "view=services" in page.url
    page.reload()
    expect(page.locator("#tv-panel-services .sg-svg")).to_be_visible(timeout=15_000)

    assert page_log.page_errors == []
    assert page_log.console_errors == []


def test_a_service_named_like_markup_is_drawn_as_text(logged_in_page: Page, project: Any, page_log: PageLog) -> None:
    page = logged_in_page
    trace_id = graph_trace(project)
    open_services(page, trace_id)

    xss_node = page.locator(".sg-node").filter(has=page.locator("title", has_text=XSS))
    expect(xss_node).to_have_count(1)
    expect(xss_node.locator(".sg-name")).to_have_text(XSS[:19] + "\u2026")  # shortened; the full name is in its <title>
    expect(page.locator(".sg-svg img")).to_have_count(0)
    xss_node.click()
    expect(page.locator(".sg-info .sg-info-name")).to_have_text(XSS)
    expect(page.locator(".sg-info img")).to_have_count(0)
    edge = page.locator(".sg-edge.sg-conn-parent-child")
    expect(edge).to_have_count(1)
    expect(edge).to_have_attribute("data-target", XSS)
    assert page_log.dialogs == []
    assert page_log.page_errors == []
