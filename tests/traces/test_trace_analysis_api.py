"""The analysis and diff endpoints behind the trace page, on traces sent through real ingest."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from tests.conftest import now_ns, otlp_request, post_otlp

TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER = "0af7651916cd43dd8448eb211c80319d"


def _send_skewed_trace(client: Any, token: str, start: int) -> None:
    """Frontend (host web-1) calls recommendation (host rec-1, whose clock runs 250 ms fast)."""
    post_otlp(
        client,
        otlp_request(
            [
                {"trace_id": TRACE, "span_id": "01" * 8, "name": "GET /", "start": start, "end": start + 100_000_000},
                {
                    "trace_id": TRACE,
                    "span_id": "02" * 8,
                    "parent_span_id": "01" * 8,
                    "name": "GET /recs",
                    "kind": 3,
                    "start": start + 10_000_000,
                    "end": start + 90_000_000,
                },
            ],
            service="frontend",
            resource={"host.name": "web-1"},
        ),
        token,
    )
    post_otlp(
        client,
        otlp_request(
            [
                {
                    "trace_id": TRACE,
                    "span_id": "03" * 8,
                    "parent_span_id": "02" * 8,
                    "name": "recommend",
                    "start": start + 260_000_000,
                    "end": start + 320_000_000,
                },
                {
                    "trace_id": TRACE,
                    "span_id": "04" * 8,
                    "parent_span_id": "03" * 8,
                    "name": "SELECT items",
                    "kind": 3,
                    "start": start + 270_000_000,
                    "end": start + 300_000_000,
                },
            ],
            service="recommendation",
            resource={"host.name": "rec-1"},
        ),
        token,
    )


def test_it_adjusts_clock_skew_by_default_and_can_show_raw_times(
    client: Any, ingest_token: str, api: APIClient
) -> None:
    start = now_ns() - 10**9
    _send_skewed_trace(client, ingest_token, start)

    adjusted = api.get(f"/api/v1/traces/{TRACE}/analysis").json()
    assert adjusted["adjusted"] is True and adjusted["adjusted_spans"] == 2
    # The 60 ms server span is centred in its 80 ms client parent: starts at 10 + 10 = 20 ms instead of 260 ms.
    assert adjusted["spans"]["03" * 8]["skew_ns"] == -240_000_000
    assert adjusted["spans"]["04" * 8]["skew_ns"] == -240_000_000, "same-host descendants move with it"
    assert adjusted["duration_ns"] == 100_000_000

    raw = api.get(f"/api/v1/traces/{TRACE}/analysis", {"adjust": "false"}).json()
    assert raw["adjusted"] is False and raw["spans"]["03" * 8]["skew_ns"] == 0
    assert raw["duration_ns"] == 320_000_000


def test_it_returns_the_critical_path_self_time_order_and_stats(client: Any, ingest_token: str, api: APIClient) -> None:
    start = now_ns() - 10**9
    _send_skewed_trace(client, ingest_token, start)
    result = api.get(f"/api/v1/traces/{TRACE}/analysis").json()

    assert result["order"] == ["01" * 8, "02" * 8, "03" * 8, "04" * 8]
    assert [result["spans"][s]["depth"] for s in result["order"]] == [0, 1, 2, 3]
    root = result["spans"]["01" * 8]
    assert root["critical"] == [[90_000_000, 100_000_000], [0, 10_000_000]]
    assert result["critical_path_ns"] == 100_000_000
    assert result["spans"]["04" * 8]["critical"] == [[30_000_000, 60_000_000]]
    assert root["self_ns"] == 20_000_000
    assert {row["operation"] for row in result["stats"]} == {"GET /", "GET /recs", "recommend", "SELECT items"}
    assert result["services"] == [
        {"service": "frontend", "spans": 2, "errors": 0},
        {"service": "recommendation", "spans": 2, "errors": 0},
    ]


def test_it_lists_orphans_whose_parent_never_arrived(client: Any, ingest_token: str, api: APIClient) -> None:
    start = now_ns() - 10**9
    post_otlp(
        client,
        otlp_request(
            [
                {"trace_id": TRACE, "span_id": "01" * 8, "name": "GET /", "start": start},
                {
                    "trace_id": TRACE,
                    "span_id": "05" * 8,
                    "parent_span_id": "ff" * 8,
                    "name": "lost",
                    "start": start + 5,
                },
            ]
        ),
        ingest_token,
    )
    result = api.get(f"/api/v1/traces/{TRACE}/analysis").json()
    assert result["roots"] == ["01" * 8] and result["orphans"] == ["05" * 8]


def test_it_compares_two_traces(client: Any, ingest_token: str, api: APIClient) -> None:
    start = now_ns() - 10**9
    _send_skewed_trace(client, ingest_token, start)
    post_otlp(
        client,
        otlp_request(
            [
                {"trace_id": OTHER, "span_id": "11" * 8, "name": "GET /", "start": start, "end": start + 50_000_000},
                {
                    "trace_id": OTHER,
                    "span_id": "12" * 8,
                    "parent_span_id": "11" * 8,
                    "name": "GET /cache",
                    "kind": 3,
                    "start": start + 1_000_000,
                    "end": start + 2_000_000,
                },
            ],
            service="frontend",
        ),
        ingest_token,
    )

    diff = api.get("/api/v1/trace-diff", {"a": TRACE, "b": OTHER}).json()
    changes = {tuple(step[1] for step in row["path"]): row["change"] for row in diff["rows"]}
    assert changes[("GET /",)] == "changed"
    assert changes[("GET /", "GET /recs")] == "removed"
    assert changes[("GET /", "GET /cache")] == "added"
    assert diff["summary"]["added"] == 1 and diff["summary"]["removed"] == 1


def test_it_rejects_bad_and_unknown_ids(api: APIClient) -> None:
    assert api.get("/api/v1/traces/zz/analysis").status_code == 400
    assert api.get("/api/v1/traces/" + "ab" * 16 + "/analysis").status_code == 404
    assert api.get("/api/v1/trace-diff", {"a": "ab" * 16}).status_code == 400
    assert api.get("/api/v1/trace-diff", {"a": "ab" * 16, "b": "nothex"}).status_code == 400
