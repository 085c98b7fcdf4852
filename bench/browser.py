"""Trace page in headless Chromium: time from navigation to a usable waterfall (rows on screen), and scrolling.

    run(base_url, api_token, session_cookie, {1000: trace_id, 10000: ..., 100000: ...}) -> [(label, seconds), ...]

is what another bench module calls (with a server it started and traces it stored). `python -m bench.browser`
does everything itself: it stores three realistic traces (bench.gen.tree_trace: ~10 attributes per span, error
events with stack traces) in the scratch ingest database, starts gunicorn (2 workers, DEBUG=0), logs in through a
session minted in-process, and prints the figures.

Per trace size: the median of REPS navigations of
- "rows visible": navigation start to the first animation frame in which waterfall rows are in the DOM and the
  viewer says it is ready (what a person waits for);
- "data fetched": navigation start until both API answers (trace document and analysis) are parsed;
- "scroll": mean time per screenful when the waterfall is scrolled 40 screens, one per animation frame.
"""

from __future__ import annotations

import statistics
import sys
import time

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPS = 3
READY = "#trace-viewer[data-state=ready] .wf-row:not([hidden])"

# Resolves, in the page, to performance.now() at the first frame where the waterfall shows rows.
_ROWS_VISIBLE_JS = """
() => new Promise((resolve) => {
  const check = () => {
    if (document.querySelector('#trace-viewer[data-state=ready] .wf-row:not([hidden])')) resolve(performance.now());
    else if (document.querySelector('#trace-viewer[data-state=error]')) resolve(-1);
    else requestAnimationFrame(check);
  };
  check();
})
"""

_SCROLL_JS = """
async (screens) => {
  const tree = document.querySelector('.wf-scroll');
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  await frame();
  const start = performance.now();
  for (let k = 0; k < screens; k += 1) {
    tree.scrollTop += tree.clientHeight;
    await frame();
  }
  await frame();
  const rows = document.querySelectorAll('.wf-row:not([hidden])').length;
  return [(performance.now() - start) / screens, rows];
}
"""


def run(
    base_url: str,
    api_token: str,
    session_cookie: str | None,
    trace_ids: dict[int, str],
    *,
    reps: int = REPS,
) -> list[tuple[str, float]]:
    """Open each trace page `reps` times; return (label, seconds) figures, smallest trace first.

    The page needs a login session (`session_cookie`, the value of Django's `sessionid` cookie; see
    `session_cookie_create`). `api_token` is only used to check, before timing, that the traces are readable.
    """
    import urllib.request

    from playwright.sync_api import sync_playwright

    if not session_cookie:
        raise ValueError("the trace page needs a login session: pass a sessionid (see session_cookie_create())")
    for trace_id in trace_ids.values():
        check = urllib.request.Request(
            f"{base_url}/api/v1/traces/{trace_id}/summary", headers={"Authorization": f"Bearer {api_token}"}
        )
        with urllib.request.urlopen(check, timeout=30) as response:
            assert response.status == 200, f"trace {trace_id} is not readable"

    figures: list[tuple[str, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 950})
        context.add_cookies([{"name": "sessionid", "value": session_cookie, "url": base_url}])
        page = context.new_page()
        # Warm-up: the first request of a worker pays for imports; that is not the page's cost.
        smallest = trace_ids[min(trace_ids)]
        page.goto(f"{base_url}/traces/{smallest}/")
        page.wait_for_selector(READY, timeout=120_000)
        for spans, trace_id in sorted(trace_ids.items()):
            visible, fetched, scroll = [], [], []
            for _ in range(reps):
                page.goto(f"{base_url}/traces/{trace_id}/", wait_until="commit", timeout=300_000)
                shown = page.evaluate(_ROWS_VISIBLE_JS)
                if shown < 0:
                    raise RuntimeError(f"trace page for {trace_id} showed an error")
                visible.append(shown / 1000)
                fetched.append(
                    page.evaluate(
                        "() => (performance.getEntriesByName('trace:fetched')[0] || {startTime: NaN}).startTime"
                    )
                    / 1000
                )
                per_screen, rows_in_dom = page.evaluate(_SCROLL_JS, 40)
                scroll.append(per_screen / 1000)
                assert rows_in_dom < 300, f"{rows_in_dom} rows in the DOM: the waterfall is not virtualized"
            label = f"trace page, {spans:,} spans"
            figures.append((f"{label}: rows visible after navigation", statistics.median(visible)))
            figures.append((f"{label}: data fetched and parsed", statistics.median(fetched)))
            figures.append((f"{label}: scroll, per screenful", statistics.median(scroll)))
        browser.close()
    return figures


def session_cookie_create(username: str) -> str:
    """A Django session for `username` (Django must be set up against the served database); its cookie value."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user = get_user_model().objects.get(username=username)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key
    return session.session_key


def _store_traces(project_id: int, sizes: list[int]) -> dict[int, str]:
    """Store one realistic trace per size through the ingest service; return their IDs."""
    import random

    from traces.services import spans_ingest

    from . import gen

    # Fresh IDs every run: the same trace id stored again with new start times would pile spans onto one trace.
    rng = random.Random()
    out = {}
    for spans in sizes:
        trace_id = rng.randbytes(16)
        specs = gen.tree_trace(rng, spans, depth=12, trace_id=trace_id, start_ns=time.time_ns() - 600 * 10**9)
        for k in range(0, len(specs), 20_000):
            spans_ingest(project_id=project_id, request=gen.request_build(specs[k : k + 20_000]))
        out[spans] = trace_id.hex()
    return out


def main(argv: list[str] | None = None) -> int:
    from . import common

    sizes = [int(arg) for arg in (argv if argv is not None else sys.argv[1:])] or [1_000, 10_000, 100_000]
    creds = common.provision(common.INGEST_DB)
    common.django_setup(creds.url)
    started = time.perf_counter()
    trace_ids = _store_traces(creds.project_id, sizes)
    common.say(f"stored traces of {', '.join(f'{n:,}' for n in sizes)} spans ({time.perf_counter() - started:.0f}s)")
    cookie = session_cookie_create("bench")
    with common.Server(creds.url, workers=2) as server:
        common.say(f"trace pages served by {server.label} on port {server.port}")
        figures = run(f"http://127.0.0.1:{server.port}", creds.api_token, cookie, trace_ids)
    for line in common.machine_context():
        print(f"   {line}")
    width = max(len(label) for label, _ in figures)
    for label, seconds in figures:
        value = f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"
        print(f"  {label:<{width}}  {value:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
