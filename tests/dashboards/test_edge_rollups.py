"""Edge rollups: calls paired across batches once a trace is idle, counted exactly once even when spans arrive late."""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any

from dashboards.edge_rollups import contribution_changes, contribution_dumps, contribution_loads
from dashboards.histogram import LatencyHistogram
from dashboards.models import EdgeRollup, TraceEdgeState
from dashboards.services import edge_states_expire, edges_rollup, rollups_compact
from tests.conftest import now_ns, otlp_request, post_otlp

MS = 1_000_000
SERVER, CLIENT, PRODUCER = 2, 3, 4


def _edges(resolution: int = 60) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(caller, callee, connection) -> (calls, errors) summed over buckets."""
    out: Counter[tuple[str, str, str]] = Counter()
    errors: Counter[tuple[str, str, str]] = Counter()
    for row in EdgeRollup.objects.filter(resolution=resolution):
        key = (row.caller, row.callee, row.connection)
        out[key] += row.count
        errors[key] += row.error_count
    return {key: (n, errors[key]) for key, n in out.items() if n}


def _checkout_calls_payments(trace: str, start: int, *, payments_ms: int = 40, error: bool = False) -> tuple[Any, Any]:
    """checkout (SERVER root, CLIENT child calling payments) and payments (SERVER + a postgres CLIENT span)."""
    root, client, server = secrets.token_hex(8), secrets.token_hex(8), secrets.token_hex(8)
    checkout = otlp_request(
        [
            {"trace_id": trace, "span_id": root, "name": "POST /checkout", "start": start, "end": start + 100 * MS},
            {
                "trace_id": trace,
                "span_id": client,
                "parent_span_id": root,
                "kind": CLIENT,
                "name": "POST /pay",
                "start": start + MS,
                "end": start + (2 + payments_ms) * MS,
                "attributes": {"peer.service": "payments"},
                "error": error,
            },
        ],
        service="checkout",
    )
    payments = otlp_request(
        [
            {
                "trace_id": trace,
                "span_id": server,
                "parent_span_id": client,
                "name": "POST /pay",
                "start": start + 2 * MS,
                "end": start + (2 + payments_ms - 1) * MS,
                "error": error,
            },
            {
                "trace_id": trace,
                "span_id": secrets.token_hex(8),
                "parent_span_id": server,
                "kind": CLIENT,
                "name": "SELECT",
                "start": start + 3 * MS,
                "end": start + 8 * MS,
                "attributes": {"db.system": "postgresql", "db.name": "payments"},
            },
        ],
        service="payments",
    )
    return checkout, payments


def _process() -> None:
    rollups_compact()
    edges_rollup(idle_seconds=0)


def test_calls_are_paired_across_batches_into_edges_with_virtual_nodes_and_clients(
    client: Any, ingest_token: str
) -> None:
    start = now_ns() - 60 * 10**9
    for index in range(3):
        checkout, payments = _checkout_calls_payments(secrets.token_hex(16), start + index * MS, error=index == 0)
        assert post_otlp(client, checkout, ingest_token).status_code == 200
        assert post_otlp(client, payments, ingest_token).status_code == 200
    _process()

    assert _edges() == {
        ("clients", "checkout", "entry"): (3, 0),
        ("checkout", "payments", "http/rpc"): (3, 1),
        ("payments", "postgresql payments", "database"): (3, 0),
    }
    assert _edges(3600) == _edges(60), "hour rollups hold the same calls"
    row = EdgeRollup.objects.get(resolution=60, caller="checkout", callee="payments")
    client_p95 = LatencyHistogram.from_json(row.histogram).quantile(1.0)
    server_p95 = LatencyHistogram.from_json(row.server_histogram).quantile(1.0)
    assert client_p95 is not None and server_p95 is not None and client_p95 > server_p95, "client sees the network"
    assert row.exemplars and row.exemplars[0]["callee_span_id"], "an example call links to the server span"
    assert any(item["error"] for item in row.exemplars), "the failed call is among the examples"
    assert TraceEdgeState.objects.filter(pending=True).count() == 0


def test_a_trace_is_not_paired_until_it_has_been_idle(client: Any, ingest_token: str) -> None:
    checkout, _payments = _checkout_calls_payments(secrets.token_hex(16), now_ns())
    post_otlp(client, checkout, ingest_token)
    rollups_compact()
    report = edges_rollup(idle_seconds=30)
    assert report.traces == 0 and report.pending == 1
    assert not EdgeRollup.objects.exists()


def test_a_late_server_span_moves_the_call_from_the_virtual_node_without_double_counting(
    client: Any, ingest_token: str
) -> None:
    trace = secrets.token_hex(16)
    checkout, payments = _checkout_calls_payments(trace, now_ns() - 30 * 10**9)
    post_otlp(client, checkout, ingest_token)
    _process()
    # Only the client half so far: peer.service names a virtual node "payments".
    assert _edges()[("checkout", "payments", "http/rpc")] == (1, 0)
    external = EdgeRollup.objects.get(resolution=60, caller="checkout", callee="payments")
    assert external.callee_kind == "external" and LatencyHistogram.from_json(external.server_histogram).count == 0

    post_otlp(client, payments, ingest_token)
    _process()
    rows = {r.callee_kind: r for r in EdgeRollup.objects.filter(resolution=60, caller="checkout", callee="payments")}
    assert rows["external"].count == 0, "the virtual call was taken back"
    assert LatencyHistogram.from_json(rows["external"].histogram).count == 0
    assert rows["service"].count == 1 and LatencyHistogram.from_json(rows["service"].server_histogram).count == 1
    assert _edges()[("payments", "postgresql payments", "database")] == (1, 0)

    # Pairing the same trace again changes nothing.
    TraceEdgeState.objects.update(pending=True)
    edges_rollup(idle_seconds=0)
    assert _edges() == {
        ("clients", "checkout", "entry"): (1, 0),
        ("checkout", "payments", "http/rpc"): (1, 0),
        ("payments", "postgresql payments", "database"): (1, 0),
    }


def test_a_server_span_whose_caller_never_arrives_is_counted_as_unpaired(client: Any, ingest_token: str) -> None:
    _checkout, payments = _checkout_calls_payments(secrets.token_hex(16), now_ns() - 10**10)
    post_otlp(client, payments, ingest_token)
    _process()
    assert _edges()[("", "payments", "unpaired")] == (1, 0)


def test_a_resent_batch_adds_no_calls(client: Any, ingest_token: str) -> None:
    checkout, payments = _checkout_calls_payments(secrets.token_hex(16), now_ns() - 10**10)
    for request in (checkout, payments, checkout, payments):
        post_otlp(client, request, ingest_token)
        _process()
    assert _edges()[("checkout", "payments", "http/rpc")] == (1, 0)


def test_rollups_off_records_no_edges(client: Any, ingest_token: str, settings: Any) -> None:
    settings.ROLLUPS_ENABLED = False
    checkout, payments = _checkout_calls_payments(secrets.token_hex(16), now_ns() - 10**10)
    post_otlp(client, checkout, ingest_token)
    post_otlp(client, payments, ingest_token)
    _process()
    assert not EdgeRollup.objects.exists() and not TraceEdgeState.objects.exists()


def test_contribution_changes_are_a_multiset_difference() -> None:
    a = (60, "a", "b", "service", "http/rpc", 0, 5 * MS, -1)
    b = (60, "a", "c", "external", "http/rpc", 1, 7 * MS, -1)
    old = Counter({a: 2, b: 1})
    new = Counter({a: 3})
    assert sorted(contribution_changes(old, new)) == sorted([(a, 1), (b, -1)])
    assert contribution_loads(contribution_dumps(old)) == old
    assert contribution_loads("") == Counter()


def test_producer_to_consumer_in_another_service_is_a_messaging_edge(client: Any, ingest_token: str) -> None:
    trace, producer = secrets.token_hex(16), secrets.token_hex(8)
    start = now_ns() - 10**10
    orders = otlp_request(
        [
            {
                "trace_id": trace,
                "span_id": producer,
                "kind": PRODUCER,
                "name": "orders publish",
                "start": start,
                "attributes": {"messaging.system": "kafka", "messaging.destination.name": "orders"},
            }
        ],
        service="orders",
    )
    consumer = otlp_request(
        [
            {
                "trace_id": trace,
                "span_id": secrets.token_hex(8),
                "parent_span_id": producer,
                "kind": 5,
                "name": "orders process",
                "start": start + 5 * MS,
            }
        ],
        service="shipping",
    )
    post_otlp(client, orders, ingest_token)
    post_otlp(client, consumer, ingest_token)
    _process()
    assert _edges()[("orders", "shipping", "messaging")] == (1, 0)


def test_pairing_state_expires_with_retention_and_rollups_stay(client: Any, ingest_token: str) -> None:
    import datetime as dt

    checkout, payments = _checkout_calls_payments(secrets.token_hex(16), now_ns() - 10**10)
    post_otlp(client, checkout, ingest_token)
    post_otlp(client, payments, ingest_token)
    _process()
    assert edge_states_expire(older_than_days=7) == 0, "a fresh state is kept"
    TraceEdgeState.objects.update(last_seen=dt.datetime.now(dt.UTC) - dt.timedelta(days=8))
    assert edge_states_expire(older_than_days=7) == 1
    assert _edges()[("checkout", "payments", "http/rpc")] == (1, 0), "rollups outlive raw spans and states"


def test_the_beat_task_compacts_then_pairs_idle_traces(client: Any, ingest_token: str, settings: Any) -> None:
    from dashboards.tasks import rollups_compact_task

    settings.EDGE_IDLE_SECONDS = 0
    checkout, payments = _checkout_calls_payments(secrets.token_hex(16), now_ns() - 10**10)
    post_otlp(client, checkout, ingest_token)
    post_otlp(client, payments, ingest_token)
    assert rollups_compact_task.apply().get() == 3, "two deltas merged, one trace paired"
    assert _edges()[("checkout", "payments", "http/rpc")] == (1, 0)
