"""The compare page in a real browser: two traces aligned by call path, differences coloured, bad input explained."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import now_ns, otlp_request
from tests.e2e.trace_data import MS, shop_trace, store

pytestmark = pytest.mark.e2e


def leaner_checkout(project: Any) -> str:
    """The shop checkout after a change: a cache instead of the recommendation call, 3 queries instead of 12."""
    trace_id = secrets.token_hex(16)
    start = now_ns() - 20 * 10**9
    spans = [
        {"trace_id": trace_id, "span_id": "01" * 8, "name": "GET /checkout", "start": start, "end": start + 40 * MS}
    ]
    spans.append(
        {
            "trace_id": trace_id,
            "span_id": "02" * 8,
            "parent_span_id": "01" * 8,
            "name": "GET /cache",
            "kind": 3,
            "start": start + MS,
            "end": start + 3 * MS,
        }
    )
    # Unchanged: same path, same duration as in the shop trace.
    spans.append(
        {
            "trace_id": trace_id,
            "span_id": "07" * 8,
            "parent_span_id": "01" * 8,
            "name": "audit log",
            "kind": 1,
            "start": start + 15 * MS,
            "end": start + 20 * MS,
        }
    )
    for k in range(3):
        spans.append(
            {
                "trace_id": trace_id,
                "span_id": f"{0x200 + k:016x}",
                "parent_span_id": "01" * 8,
                "name": "SELECT orders",
                "kind": 3,
                "start": start + (5 + k) * MS,
                "end": start + (5 + k) * MS + 150_000,
            }
        )
    store(project, otlp_request(spans, service="frontend", resource={"host.name": "web-1"}))
    return trace_id


def test_comparing_two_traces_shows_added_removed_and_changed_paths(logged_in_page: Page, project: Any) -> None:
    page = logged_in_page
    before = shop_trace(project)
    after = leaner_checkout(project)

    page.goto("/traces/compare/")
    page.get_by_label("Trace A (baseline)").fill(before)
    page.get_by_label("Trace B (compared)").fill(after)
    page.get_by_role("button", name="Compare").click()

    summary = page.get_by_role("list", name="Summary")
    expect(summary).to_contain_text("1 added")
    expect(summary.locator("li.removed")).to_contain_text("removed")
    expect(summary.locator("li.total")).to_contain_text("B is \u2212280 ms (\u221288%) vs A")  # 320 ms -> 40 ms
    table = page.locator("#diff-table")
    cache = table.locator("tr", has_text="GET /cache")
    expect(cache.locator(".diff-mark")).to_have_text("+ added")
    expect(table.locator("tr", has_text="GET /recs").locator(".diff-mark")).to_have_text("\u2212 removed")
    recommend = page.locator(".diff-op").get_by_text("recommend", exact=True)
    expect(table.locator("tr.in-removed").filter(has=recommend)).to_have_count(1)
    orders = table.locator("tr", has_text="SELECT orders")
    expect(orders.locator("td").nth(1)).to_have_text("12")
    expect(orders.locator("td").nth(2)).to_have_text("3")
    expect(orders.locator("td.fewer")).to_have_text("\u22129")
    root = table.locator("tr").filter(has_text="GET /checkout").first
    expect(root.locator("td.faster").first).to_contain_text("\u221260.0 ms")

    audit = table.locator("tr", has_text="audit log")
    expect(audit).to_have_class("diff-row change-same")
    expect(audit).to_be_visible()
    page.get_by_label("Only differences").check()
    expect(audit).to_be_hidden()
    expect(cache).to_be_visible()

    page.get_by_role("link", name="Swap A and B").click()
    expect(page.get_by_label("Trace A (baseline)")).to_have_value(after)
    expect(page.locator("#diff-table tr", has_text="GET /cache").locator(".diff-mark")).to_have_text("\u2212 removed")


def test_bad_and_unknown_ids_are_explained_not_crashed(logged_in_page: Page, project: Any) -> None:
    page = logged_in_page
    known = shop_trace(project)
    unknown = secrets.token_hex(16)

    response = page.goto(f"/traces/compare/?a=not-hex&b={unknown}")

    assert response and response.status == 400
    expect(
        page.locator(".compare-field")
        .filter(has=page.get_by_text("Trace A (baseline)", exact=True))
        .locator(".field-error")
    ).to_contain_text("32 hexadecimal characters")
    expect(
        page.locator(".compare-field")
        .filter(has=page.get_by_text("Trace B (compared)", exact=True))
        .locator(".field-error")
    ).to_contain_text(f"Trace {unknown} was not found")
    expect(page.locator("#diff-table")).to_have_count(0)

    page.goto(f"/traces/{known}/")
    page.get_by_role("link", name="Compare\u2026").click()
    expect(page.get_by_label("Trace A (baseline)")).to_have_value(known)
    expect(page.locator(".field-error")).to_have_count(0)
