"""The upload page in a real browser: view a trace file without storing it, store it, and bad files."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import now_ns
from tests.traces.test_upload_api import jaeger_file

pytestmark = pytest.mark.e2e


def rows(page: Page) -> Any:
    return page.locator(".wf-row:not([hidden])")


def test_a_jaeger_file_is_shown_and_can_then_be_stored(logged_in_page: Page, project: Any, tmp_path: Path) -> None:
    page = logged_in_page
    trace_id = secrets.token_hex(16)
    path = tmp_path / "checkout.json"
    path.write_bytes(orjson.dumps(jaeger_file(trace_id, start_us=now_ns() // 1000 - 10**6, spans=4)))

    page.goto("/traces/upload/")
    page.locator("#upload-file").set_input_files(path)

    expect(page.locator("#trace-viewer[data-state=ready]")).to_have_count(1)
    expect(page.locator("#upload-summary")).to_contain_text("checkout.json")
    expect(page.locator("#upload-summary")).to_contain_text(trace_id)
    expect(rows(page)).to_have_count(4)
    expect(rows(page).first.locator(".wf-name")).to_have_text("GET /home")
    # Nothing is stored by viewing.
    assert page.request.get(f"/api/v1/traces/{trace_id}").status == 404

    rows(page).nth(1).click()
    expect(page.get_by_role("complementary", name="Span details")).to_contain_text("db-1")

    page.get_by_label("Store in project").select_option("shop")
    page.get_by_role("button", name="Store trace").click()

    expect(page).to_have_url(f"{page.url.split('/traces/')[0]}/traces/{trace_id}/")
    expect(page.locator("#trace-viewer[data-state=ready]")).to_have_count(1)
    expect(rows(page)).to_have_count(4)


def test_a_file_with_several_traces_offers_a_choice(logged_in_page: Page, tmp_path: Path) -> None:
    page = logged_in_page
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    document = jaeger_file(first, start_us=now_ns() // 1000, spans=2)
    document["data"] += jaeger_file(second, start_us=now_ns() // 1000, service="mobile-bff", spans=6)["data"]
    path = tmp_path / "two.json"
    path.write_bytes(orjson.dumps(document))

    page.goto("/traces/upload/")
    page.locator("#upload-file").set_input_files(path)
    expect(rows(page)).to_have_count(2)
    picker = page.get_by_label("Trace in this file")
    expect(picker.locator("option")).to_have_count(2)

    picker.select_option(second)

    expect(rows(page)).to_have_count(6)
    expect(rows(page).first.locator(".wf-svc")).to_have_text("mobile-bff")


def test_a_bad_file_is_explained(logged_in_page: Page, tmp_path: Path) -> None:
    page = logged_in_page
    path = tmp_path / "notes.json"
    path.write_text("these are not spans")

    page.goto("/traces/upload/")
    page.locator("#upload-file").set_input_files(path)

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("notes.json: the file is not JSON")
    expect(page.locator("#trace-viewer")).to_be_hidden()
