"""`manage.py demo`: the simulated shop sends real OTLP through the SDK to a live server; checked via the read API."""

from __future__ import annotations

import io
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from rest_framework.test import APIClient

from traces import demo

SHOP = {"edge", "api-gateway", "auth", "cart", "checkout", "inventory", "payment"}


def _run(server: Any, token: str, **options: Any) -> demo.DemoStats:
    options.setdefault("rate", 200.0)
    options.setdefault("seed", 42)
    # Only forced faults: an occasional one starting mid-test would make the assertions flaky.
    options.setdefault("random_faults", False)
    stats = demo.run(demo.DemoConfig(endpoint=server.url, token=token, **options))
    assert stats.flushed and stats.spans_failed == 0, stats
    assert stats.spans_exported == stats.spans_created
    return stats


def _search(api: APIClient, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/api/v1/traces", {"limit": 100, **params})
    assert response.status_code == 200, response.content
    return response.json()["traces"]


def _trace(api: APIClient, trace_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/traces/{trace_id}")
    assert response.status_code == 200, response.content
    return response.json()


def _spans(trace: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [span for span in trace["spans"] if all(span[key] == value for key, value in match.items())]


def _by_id(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["span_id"]: span for span in trace["spans"]}


def _exception(span: dict[str, Any]) -> dict[str, Any]:
    events = [event for event in span["events"] if event["name"] == "exception"]
    assert len(events) == 1, span
    return events[0]["attributes"]


def test_checkout_crosses_the_shop_and_its_order_is_consumed_in_a_linked_trace(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    stats = _run(live_server, ingest_token, flows=("checkout",), count=2)

    assert stats.requests == 2
    checkouts = _search(api, service="edge")
    assert len(checkouts) == 2
    paid = None
    for summary in checkouts:
        assert summary["root_service"] == "edge" and summary["root_name"] == "POST /api/checkout"
        trace = _trace(api, summary["trace_id"])
        assert set(trace["services"]) == SHOP
        spans = _by_id(trace)
        for span in trace["spans"]:
            resource = trace["resources"][span["resource_id"]]["attributes"]
            assert resource["service.name"] == span["service_name"]
            assert resource["deployment.environment"] == "demo"
            assert resource["host.name"] == demo.SERVICES[span["service_name"]].host
            assert resource["service.version"] == demo.SERVICES[span["service_name"]].version
            if span["kind"] == "SERVER" and span["service_name"] not in ("edge", "api-gateway"):
                # Every internal hop is a client span in the caller with the callee's server span under it.
                client = spans[span["parent_span_id"]]
                assert client["kind"] == "CLIENT" and client["service_name"] != span["service_name"]
                assert client["attributes"]["peer.service"] == span["service_name"]
                assert client["attributes"]["http.request.method"] == span["attributes"]["http.request.method"]
                assert span["attributes"]["url.path"] and span["attributes"]["http.route"]
                status = span["attributes"]["http.response.status_code"]
                assert client["attributes"]["http.response.status_code"] == status
        assert (
            _spans(trace, service_name="api-gateway", kind="SERVER")[0]["parent_span_id"]
            == trace["spans"][0]["span_id"]
        )
        postgres = [s for s in trace["spans"] if s["attributes"].get("db.system") == "postgresql"]
        assert {s["attributes"]["db.namespace"] for s in postgres} >= {"orders", "inventory", "payments"}
        assert all(s["kind"] == "CLIENT" and s["attributes"]["db.query.text"] for s in postgres)
        assert all(s["attributes"]["server.address"].startswith("pg-") for s in postgres)
        assert any(s["attributes"].get("db.system") == "redis" and s["service_name"] == "cart" for s in trace["spans"])
        producers = _spans(trace, kind="PRODUCER")
        if producers:
            paid = (trace, producers[0])
    assert paid is not None, "with this seed at least one checkout is paid"

    trace, producer = paid
    assert producer["service_name"] == "checkout" and producer["name"] == "send orders"
    assert producer["attributes"]["messaging.system"] == "kafka"
    assert producer["attributes"]["messaging.destination.name"] == "orders"
    consumers = _search(api, service="fulfillment")
    assert consumers and all(summary["services"] == ["fulfillment"] for summary in consumers)
    linked = []
    for summary in consumers:
        consumer_trace = _trace(api, summary["trace_id"])
        root = consumer_trace["spans"][0]
        assert root["kind"] == "CONSUMER" and root["parent_span_id"] is None
        assert root["attributes"]["messaging.destination.name"] == "orders"
        assert consumer_trace["trace_id"] not in {c["trace_id"] for c in checkouts}, "a separate trace"
        linked += [(link["trace_id"], link["span_id"]) for link in root["links"]]
    assert (trace["trace_id"], producer["span_id"]) in linked


@pytest.mark.parametrize(
    ("flow", "root_name", "services", "operations"),
    [
        (
            "browse",
            "GET /api/products/{sku}",
            {"edge", "api-gateway", "inventory", "recommendation"},
            {"GET /v1/products/{sku}", "GET /v1/recommendations", "SELECT inventory", "render product page"},
        ),
        (
            "add-to-cart",
            "POST /api/cart/items",
            {"edge", "api-gateway", "auth", "cart", "inventory", "recommendation"},
            {"POST /v1/carts/{cart_id}/items", "GET /v1/stock/{sku}", "HSET", "POST /v1/sessions/verify"},
        ),
        ("login", "POST /api/login", {"edge", "api-gateway", "auth"}, {"POST /v1/login", "verify password", "INCR"}),
    ],
)
def test_each_flow_has_its_own_shape(
    live_server: Any,
    transactional_db: None,
    ingest_token: str,
    api: APIClient,
    flow: str,
    root_name: str,
    services: set[str],
    operations: set[str],
) -> None:
    _run(live_server, ingest_token, flows=(flow,), count=3)

    summaries = _search(api)
    assert len(summaries) == 3 and {summary["root_name"] for summary in summaries} == {root_name}
    traces = [_trace(api, summary["trace_id"]) for summary in summaries]
    # Some requests end early (an expired session, an item out of stock), so look at the flow's traces together.
    assert set().union(*(trace["services"] for trace in traces)) >= services
    assert {span["name"] for trace in traces for span in trace["spans"]} >= operations


def test_n_plus_one_checkout_runs_38_sequential_order_queries(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    _run(live_server, ingest_token, flows=("checkout",), count=1, faults=frozenset({"n-plus-one"}))

    [summary] = _search(api, service="checkout")
    trace = _trace(api, summary["trace_id"])
    queries = _spans(trace, name="SELECT orders")
    assert len(queries) == demo.N_PLUS_ONE_QUERIES == 38
    server = _spans(trace, service_name="checkout", kind="SERVER")[0]
    assert {query["parent_span_id"] for query in queries} == {server["span_id"]}
    assert all(query["attributes"]["db.system"] == "postgresql" for query in queries)
    ends = [int(q["start_ns"]) + q["duration_ns"] for q in queries]
    assert all(int(later["start_ns"]) >= end for later, end in zip(queries[1:], ends)), "one after the other"


def test_without_n_plus_one_checkout_reads_orders_once(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    _run(live_server, ingest_token, flows=("checkout",), count=1)

    [summary] = _search(api, service="checkout")
    assert len(_spans(_trace(api, summary["trace_id"]), name="SELECT orders")) == 1


def test_error_burst_makes_payment_answer_500_with_exception_events(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    _run(live_server, ingest_token, flows=("checkout",), count=3, faults=frozenset({"error-burst"}))

    failing = _search(api, service="payment", status="error")
    assert failing
    for summary in failing:
        trace = _trace(api, summary["trace_id"])
        errors = _spans(trace, service_name="payment", kind="SERVER", status_code="ERROR")
        assert errors
        for span in errors:
            assert span["attributes"]["http.response.status_code"] == 500
            exception = _exception(span)
            assert exception["exception.type"] == "payment.errors.ProcessorUnavailable"
            assert "did not answer" in exception["exception.message"]
            assert exception["exception.stacktrace"].startswith("Traceback (most recent call last):")
            processor = [s for s in trace["spans"] if s["parent_span_id"] == span["span_id"] and s["kind"] == "CLIENT"]
            assert any(s["status_code"] == "ERROR" and s["attributes"]["peer.service"] for s in processor)
    # When both attempts fail, checkout gives up and the user gets a 502 at the edge.
    given_up = [
        trace
        for trace in (_trace(api, s["trace_id"]) for s in failing)
        if len(_spans(trace, service_name="payment", kind="SERVER", status_code="ERROR")) == 2
    ]
    assert given_up, "with this seed one checkout fails twice"
    for trace in given_up:
        root = trace["spans"][0]
        assert root["service_name"] == "edge" and root["status_code"] == "ERROR"
        assert root["attributes"]["http.response.status_code"] == 502
        checkout = _spans(trace, service_name="checkout", kind="SERVER")[0]
        assert _exception(checkout)["exception.type"] == "checkout.errors.PaymentFailed"
        retries = _spans(trace, service_name="checkout", name="POST /v1/charges")
        assert sorted(s["attributes"]["http.request.resend_count"] for s in retries) == [0, 1]
        assert not _spans(trace, kind="PRODUCER"), "no order is published for an unpaid checkout"


def test_slow_db_slows_every_inventory_query(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    _run(live_server, ingest_token, flows=("browse",), count=2, faults=frozenset({"slow-db"}))

    slow = _search(api, service="inventory", min_duration="300ms")
    assert len(slow) == 2
    for summary in slow:
        trace = _trace(api, summary["trace_id"])
        queries = [s for s in trace["spans"] if s["attributes"].get("db.namespace") == "inventory"]
        assert queries
        assert all(300_000_000 <= q["duration_ns"] <= 1_500_000_000 for q in queries)
        other = [s for s in trace["spans"] if s["attributes"].get("db.system") and s["service_name"] != "inventory"]
        assert all(s["duration_ns"] < 300_000_000 for s in other), "only inventory's database is slow"


def test_clock_skew_shifts_the_recommendation_hosts_spans(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    _run(live_server, ingest_token, flows=("browse",), count=2, faults=frozenset({"clock-skew"}))

    summaries = _search(api, service="edge")
    assert len(summaries) == 2
    for summary in summaries:
        trace = _trace(api, summary["trace_id"])
        spans = _by_id(trace)
        [server] = _spans(trace, service_name="recommendation", kind="SERVER")
        client = spans[server["parent_span_id"]]
        assert client["service_name"] == "api-gateway"
        skew = int(server["start_ns"]) - int(client["start_ns"])
        assert demo.CLOCK_SKEW_NS <= skew < demo.CLOCK_SKEW_NS + 5_000_000
        assert (
            trace["resources"][server["resource_id"]]["attributes"]["host.name"] == demo.SERVICES["recommendation"].host
        )
        # The skewed server span even ends after the client span that waited for it.
        assert int(server["start_ns"]) + server["duration_ns"] > int(client["start_ns"]) + client["duration_ns"]
        # Other hosts keep time: inventory's server span starts within a millisecond of its client span.
        [inventory] = _spans(trace, service_name="inventory", kind="SERVER")
        assert 0 <= int(inventory["start_ns"]) - int(spans[inventory["parent_span_id"]]["start_ns"]) < 1_000_000


def test_batch_job_sends_one_trace_of_20000_spans_in_many_exports(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    stats = _run(live_server, ingest_token, count=0, faults=frozenset({"batch-job"}))

    assert stats.requests == 0 and stats.traces == 1 and stats.spans_exported == 20_000
    assert stats.export_batches[demo.BATCH_JOB_SERVICE] >= 20_000 // demo.EXPORT_BATCH_SIZE + 1
    [summary] = _search(api, service=demo.BATCH_JOB_SERVICE)
    assert summary["span_count"] == 20_000 and summary["root_name"] == "reindex products"
    trace = _trace(api, summary["trace_id"])
    assert len(trace["spans"]) == 20_000
    root = trace["spans"][0]
    assert root["parent_span_id"] is None and root["kind"] == "INTERNAL"
    pages = _spans(trace, name="reindex page")
    assert len(pages) > 150 and {page["parent_span_id"] for page in pages} == {root["span_id"]}
    assert len(_spans(trace, name="build document")) > 19_000


@pytest.mark.parametrize("spans", [2, 3, 4, 101, 102, 103, 104, 1500])
def test_the_batch_job_has_exactly_the_requested_number_of_spans(spans: int) -> None:
    shop = demo.Shop(random.Random(1), demo.Faults(frozenset(), rng=random.Random(2), occasional=False))
    job = shop.reindex_job(spans)
    assert sum(1 for _ in job.walk()) == spans
    assert all(span.start <= span.end <= job.end for span in job.walk())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--fault", "meltdown"], "unknown fault 'meltdown'; choose from: error-burst, slow-db"),
        (["--fault", "slow-db,nope"], "unknown fault 'nope'"),
        (["--flow", "dance"], "unknown flow 'dance'"),
        (["--rate", "0"], "--rate must be a positive number"),
        (["--rate", "nan"], "--rate must be a positive number"),
        (["--duration", "-5"], "--duration must be a positive number"),
        (["--count", "-1"], "--count must not be negative"),
        (["--batch-job-spans", "1"], "--batch-job-spans must be at least 2"),
        (["--endpoint", "ftp://example.com"], "--endpoint must be an http:// or https:// URL"),
    ],
)
def test_it_reports_invalid_arguments_as_command_errors(arguments: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("demo", "--token", "tui_ingest_whatever", *arguments)


def test_it_reports_a_rejected_token(live_server: Any, transactional_db: None) -> None:
    with pytest.raises(CommandError, match="rejected the ingest token"):
        call_command("demo", "--endpoint", live_server.url, "--token", "tui_ingest_not-a-real-token", "--count", "1")


def test_it_reports_an_unreachable_endpoint() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = demo.DemoConfig(endpoint=f"http://127.0.0.1:{port}", token="tui_ingest_x")
    with pytest.raises(demo.DemoError, match=f"cannot send traces to http://127.0.0.1:{port}/v1/traces"):
        demo.endpoint_check(config, patience_s=0)


def test_it_reads_the_token_from_the_credentials_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    with pytest.raises(demo.DemoError, match="run `manage.py bootstrap`"):
        demo.token_from_credentials(path)
    path.write_text('{"ingest_token": "tui_ingest_abc"}')
    assert demo.token_from_credentials(path) == "tui_ingest_abc"


def test_the_command_sends_exactly_count_requests_and_reports(
    live_server: Any, transactional_db: None, ingest_token: str, api: APIClient
) -> None:
    out = io.StringIO()
    call_command(
        "demo",
        *("--endpoint", f"{live_server.url}/v1/traces", "--token", ingest_token),
        *("--count", "5", "--rate", "100", "--seed", "3", "--no-random-faults", "--flow", "browse,login"),
        stdout=out,
    )

    assert re.search(r"demo: 5 requests, 5 traces, \d+ spans exported \(0 failed\)", out.getvalue()), out.getvalue()
    summaries = _search(api)
    assert len(summaries) == 5
    assert {summary["root_name"] for summary in summaries} <= {"GET /api/products/{sku}", "POST /api/login"}


def test_sigterm_stops_the_stream_promptly_and_flushes_every_span(
    live_server: Any, transactional_db: None, ingest_token: str, project: Any
) -> None:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--endpoint", live_server.url, "--token", ingest_token, "--rate", "20"],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while _stored_spans(project.id) == 0:
            assert time.monotonic() < deadline, "no spans arrived"
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        time.sleep(1)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert time.monotonic() - stopped_at < 10
    match = re.search(
        r"demo: (\d+) requests, (\d+) traces, (\d+) spans exported \((\d+) failed\)", out.splitlines()[-1]
    )
    assert match, out
    requests, _traces, exported, failed = map(int, match.groups())
    assert requests > 0 and failed == 0
    assert _stored_spans(project.id) == exported, "every span the SDK had queued was sent before exiting"


def _stored_spans(project_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM spans WHERE project_id = %s", [project_id])
        return int(cursor.fetchone()[0])
