"""Browser fixtures: Playwright driving Debian's Chromium against pytest-django's live server.

`playwright install` is not available here, so the system Chromium is launched by path (see `chromium_path`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Error,
    Page,
    Playwright,
    Request,
    expect,
    sync_playwright,
)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "alice-password-1"  # the `member` fixture's password

expect.set_options(timeout=10_000)


# Module scope, not session: only one sync Playwright may run per thread, and a test module may start its own.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class PageLog:
    """What a page did besides rendering: every request it made, dialogs it opened, errors it logged."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def foreign_requests(self, base_url: str) -> list[str]:
        own = urlsplit(base_url).netloc
        return [url for url in self.requests if urlsplit(url).scheme != "data" and urlsplit(url).netloc != own]


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def page(browser: Browser, live_server: Any, page_log: PageLog) -> Iterator[Page]:
    """A fresh page (own cookies) on the live server, recording requests, dialogs and errors into `page_log`."""
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        page_log.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(request: Request) -> None:
        page_log.requests.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            page_log.console_errors.append(message.text)

    def on_page_error(error: Error) -> None:
        page_log.page_errors.append(str(error))

    page.on("dialog", on_dialog)
    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    yield page
    context.close()


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.fixture
def logged_in_page(page: Page, member: Any) -> Page:
    """`page`, logged in through the login form as the project member alice."""
    log_in(page, member.get_username(), PASSWORD)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page
