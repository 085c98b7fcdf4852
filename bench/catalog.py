"""The synthetic system both generators describe: 10 services x 12 operations, 3 pods (resources) per service.

Shared by the OTLP generator (bench/gen.py) and the SQL loader (bench/loader.py) so the ingested and the bulk-loaded
data have the same services, operations, attribute keys and resource attributes, and searches find both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# OTLP SpanKind values.
INTERNAL, SERVER, CLIENT, PRODUCER = 1, 2, 3, 4

# Operation types: decide which attribute set a span carries (the loader switches on the number).
OP_SERVER, OP_CLIENT, OP_DB_SQL, OP_DB_REDIS, OP_PRODUCER, OP_INTERNAL = range(6)

SERVICES = (
    ("frontend", "pages", "nodejs"),
    ("api-gateway", "routes", "go"),
    ("checkout", "orders", "java"),
    ("cart", "carts", "dotnet"),
    ("catalog", "products", "python"),
    ("payments", "payments", "java"),
    ("users", "accounts", "python"),
    ("inventory", "stock", "go"),
    ("shipping", "shipments", "rust"),
    ("notifications", "messages", "python"),
)
ENTRY_SERVICES = 2  # roots are server spans of the first two services (frontend, api-gateway)
SERVER_OPS = 6  # the first six operations of every service are its HTTP routes
OPS_PER_SERVICE = 12
PODS_PER_SERVICE = 3
USERS = 100_000  # app.user_id cardinality: a value hits ~0.001% of spans (selective attribute search)
TENANTS = 50  # app.tenant cardinality: a value hits ~2% of spans (unselective attribute search)
ERROR_RATE = 0.05

SCOPES = {
    OP_SERVER: ("opentelemetry.instrumentation.http.server", "0.55b0"),
    OP_CLIENT: ("opentelemetry.instrumentation.http.client", "0.55b0"),
    OP_DB_SQL: ("opentelemetry.instrumentation.psycopg", "0.55b0"),
    OP_DB_REDIS: ("opentelemetry.instrumentation.redis", "0.55b0"),
    OP_PRODUCER: ("opentelemetry.instrumentation.kafka", "0.55b0"),
    OP_INTERNAL: ("app.tracer", "1.0.0"),
}
ERRORS = {
    OP_SERVER: ("Internal Server Error", "RuntimeError"),
    OP_CLIENT: ("upstream connect error or disconnect/reset before headers", "ConnectionResetError"),
    OP_DB_SQL: ("canceling statement due to statement timeout", "psycopg.errors.QueryCanceled"),
    OP_DB_REDIS: ("Timeout reading from socket", "redis.exceptions.TimeoutError"),
    OP_PRODUCER: ("Broker: Not enough in-sync replicas", "KafkaException"),
    OP_INTERNAL: ("invalid quantity: -1", "ValueError"),
}
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605",
    "okhttp/4.12.0",
)


@dataclass(frozen=True)
class Op:
    id: int  # service index * 12 + operation index
    service_index: int
    service: str
    name: str
    kind: int
    optype: int
    base_ms: float  # median duration
    http_method: str | None = None
    http_route: str | None = None
    peer_service: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    db_system: str | None = None
    db_name: str | None = None
    db_operation: str | None = None
    db_table: str | None = None
    db_query: str | None = None
    messaging_destination: str | None = None
    code_function: str | None = None

    @property
    def scope(self) -> tuple[str, str]:
        return SCOPES[self.optype]

    @property
    def error_message(self) -> str:
        return ERRORS[self.optype][0]

    @property
    def exception_type(self) -> str:
        return ERRORS[self.optype][1]

    @property
    def stacktrace(self) -> str:
        """A plausible ~600-byte stack trace: error spans carry one in their exception event."""
        frames = "".join(
            f'  File "/app/{self.service}/{mod}.py", line {40 + 7 * i}, in {fn}\n    {line}\n'
            for i, (mod, fn, line) in enumerate(
                (
                    ("views", "handle", "return self.dispatch(request)"),
                    ("service", "process", "result = client.call(payload, timeout=2.0)"),
                    ("client", "call", "response = self._session.send(prepared)"),
                    ("transport", "send", "raise self._error_for(status)"),
                )
            )
        )
        return f"Traceback (most recent call last):\n{frames}{self.exception_type}: {self.error_message}"


def _ops_for(index: int) -> list[Op]:
    service, noun, _lang = SERVICES[index]
    base = index * OPS_PER_SERVICE
    peer1 = SERVICES[(index + 2) % len(SERVICES)][0]
    peer2 = SERVICES[(index + 5) % len(SERVICES)][0]
    routes = (
        ("GET", f"/api/{noun}"),
        ("GET", f"/api/{noun}/{{id}}"),
        ("POST", f"/api/{noun}"),
        ("PUT", f"/api/{noun}/{{id}}"),
        ("DELETE", f"/api/{noun}/{{id}}"),
        ("GET", f"/api/{noun}/{{id}}/history"),
    )
    ops = [
        Op(
            base + i,
            index,
            service,
            f"{method} {route}",
            SERVER,
            OP_SERVER,
            30.0 + 10 * i,
            http_method=method,
            http_route=route,
            server_address=f"{service}.shop.example",
        )
        for i, (method, route) in enumerate(routes)
    ]
    ops += [
        Op(
            base + 6 + i,
            index,
            service,
            method,
            CLIENT,
            OP_CLIENT,
            25.0,
            http_method=method,
            http_route=f"/api/{SERVICES[(index + 2 + 3 * i) % len(SERVICES)][1]}",
            peer_service=peer,
            server_address=f"{peer}.shop.svc.cluster.local",
            server_port=8080,
        )
        for i, (method, peer) in enumerate((("GET", peer1), ("POST", peer2)))
    ]
    ops.append(
        Op(
            base + 8,
            index,
            service,
            f"SELECT {noun}",
            CLIENT,
            OP_DB_SQL,
            3.0,
            server_address="pg-main.shop.svc.cluster.local",
            server_port=5432,
            db_system="postgresql",
            db_name=f"{service.replace('-', '_')}_db",
            db_operation="SELECT",
            db_table=noun,
            db_query=f"SELECT id, status, total, created_at, updated_at FROM {noun} WHERE tenant_id = $1 AND id = $2",
        )
    )
    ops.append(
        Op(
            base + 9,
            index,
            service,
            "HGETALL",
            CLIENT,
            OP_DB_REDIS,
            0.6,
            server_address="redis-cache.shop.svc.cluster.local",
            server_port=6379,
            db_system="redis",
            db_name="0",
            db_operation="HGETALL",
            db_table=noun,
            db_query=f"HGETALL {noun}:?",
        )
    )
    ops.append(
        Op(
            base + 10,
            index,
            service,
            f"{service}.events publish",
            PRODUCER,
            OP_PRODUCER,
            2.0,
            server_address="kafka-0.shop.svc.cluster.local",
            server_port=9092,
            messaging_destination=f"{service}.events",
        )
    )
    ops.append(
        Op(
            base + 11,
            index,
            service,
            f"compute_{noun}",
            INTERNAL,
            OP_INTERNAL,
            1.0,
            code_function=f"{service.replace('-', '_')}.domain.compute_{noun}",
        )
    )
    return ops


OPS: tuple[Op, ...] = tuple(op for index in range(len(SERVICES)) for op in _ops_for(index))


def resource_attributes(service_index: int, pod: int) -> dict[str, Any]:
    """The 8 resource attributes of one pod of a service."""
    service, _noun, lang = SERVICES[service_index]
    return {
        "service.name": service,
        "service.version": f"1.{service_index + 4}.{pod + 1}",
        "service.namespace": "shop",
        "deployment.environment.name": "production",
        "host.name": f"node-{(service_index * PODS_PER_SERVICE + pod) % 7:02d}.eu-west-1.compute.internal",
        "k8s.pod.name": f"{service}-7d9f8c6b5-{'abcdefghjk'[service_index]}{'xyz'[pod]}q{pod}",
        "k8s.namespace.name": "shop",
        "telemetry.sdk.language": lang,
    }


def url_path(route: str, item: int) -> str:
    return route.replace("{id}", str(item))
