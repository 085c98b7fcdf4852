"""Demo traffic: a simulated web shop that reports through the real OpenTelemetry Python SDK.

Every simulated service has its own TracerProvider (own Resource, BatchSpanProcessor and OTLP/HTTP exporter), as
separately deployed services would; a trace crosses services because the child span is started in the parent span's
context, exactly as propagation does between real processes. Timing is synthesised: a request is first planned as a
tree of `SimSpan`s with relative times, then replayed into the SDK with explicit start/end timestamps, anchored so the
request ends "now". Nothing sleeps for the duration of a span, so a second of wall time can carry many requests.

Faults can be forced for the whole run (`--fault NAME`); without that, each of them still comes and goes now and
then so that a long-running demo shows incidents, not only happy paths.
"""

from __future__ import annotations

import json
import math
import random
import re
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

NS_PER_US = 1_000
NS_PER_MS = 1_000_000

FAULTS = ("error-burst", "slow-db", "n-plus-one", "clock-skew", "batch-job")
# Relative weights: most visitors browse, few buy.
FLOW_WEIGHTS: dict[str, int] = {"browse": 10, "add-to-cart": 4, "login": 3, "checkout": 3}
FLOWS = tuple(FLOW_WEIGHTS)

N_PLUS_ONE_QUERIES = 38
SLOW_DB_MS = (300.0, 1500.0)
SKEWED_SERVICE = "recommendation"
CLOCK_SKEW_NS = 250 * NS_PER_MS
BATCH_JOB_SPANS = 20_000
BATCH_JOB_SERVICE = "search-indexer"
EXPORT_BATCH_SIZE = 512
# The job's spans are all ended within a fraction of a second; the queue must hold all of them or the SDK drops.
MIN_QUEUE_SIZE = 65_536
EXPORT_TIMEOUT_S = 5.0
SCHEDULE_DELAY_MS = 2_000
CLOSE_TIMEOUT_S = 15.0
PREFLIGHT_PATIENCE_S = 15.0

# Occasional faults when not forced: (mean seconds between episodes, episode length in seconds).
EPISODES: dict[str, tuple[float, float]] = {
    "error-burst": (600.0, 30.0),
    "slow-db": (420.0, 20.0),
    "clock-skew": (900.0, 120.0),
}
N_PLUS_ONE_CHANCE = 0.08  # share of checkouts by customers whose order history the ORM loads one row at a time
BATCH_JOB_FIRST_S = 300.0
BATCH_JOB_EVERY_S = 3600.0


class DemoError(Exception):
    """A configuration or connection problem the user has to fix (the command turns it into CommandError)."""


# --- configuration ----------------------------------------------------------------------------------------------


def faults_parse(names: list[str] | tuple[str, ...] | None) -> frozenset[str]:
    """Validate fault names (repeatable, comma-separated lists allowed)."""
    faults: set[str] = set()
    for item in names or ():
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in FAULTS:
                raise DemoError(f"unknown fault {name!r}; choose from: {', '.join(FAULTS)}")
            faults.add(name)
    return frozenset(faults)


def flows_parse(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if not names:
        return FLOWS
    flows: list[str] = []
    for item in names:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in FLOW_WEIGHTS:
                raise DemoError(f"unknown flow {name!r}; choose from: {', '.join(FLOWS)}")
            if name not in flows:
                flows.append(name)
    return tuple(flows) or FLOWS


def endpoint_normalize(endpoint: str) -> str:
    """The server's base URL, accepting a pasted `.../v1/traces` too."""
    url = endpoint.strip().rstrip("/")
    if url.endswith("/v1/traces"):
        url = url[: -len("/v1/traces")]
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise DemoError(f"--endpoint must be an http:// or https:// URL, got {endpoint!r}")
    return url


def token_from_credentials(path: Path) -> str:
    """The ingest token `manage.py bootstrap` saved, for running without --token."""
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise DemoError(f"no --token given and {path} does not exist; run `manage.py bootstrap` or pass --token")
    except (OSError, ValueError) as exc:
        raise DemoError(f"no --token given and {path} cannot be read: {exc}")
    token = saved.get("ingest_token") if isinstance(saved, dict) else None
    if not isinstance(token, str) or not token:
        raise DemoError(f"no --token given and {path} holds no ingest_token; run `manage.py bootstrap`")
    return token


@dataclass(frozen=True)
class DemoConfig:
    endpoint: str
    token: str
    rate: float = 2.0
    duration: float | None = None
    count: int | None = None
    faults: frozenset[str] = frozenset()
    flows: tuple[str, ...] = FLOWS
    seed: int | None = None
    batch_job_spans: int = BATCH_JOB_SPANS
    # Off for tests and recordings that must only show the forced faults.
    random_faults: bool = True
    progress_every: float = 5.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", endpoint_normalize(self.endpoint))
        if not self.token.strip():
            raise DemoError("the ingest token is empty")
        if not math.isfinite(self.rate) or self.rate <= 0:
            raise DemoError(f"--rate must be a positive number of traces per second, got {self.rate}")
        if self.rate > 1000:
            raise DemoError(f"--rate {self.rate} is more than this generator can plan (at most 1000 traces/s)")
        if self.duration is not None and (not math.isfinite(self.duration) or self.duration <= 0):
            raise DemoError(f"--duration must be a positive number of seconds, got {self.duration}")
        if self.count is not None and self.count < 0:
            raise DemoError(f"--count must not be negative, got {self.count}")
        if self.batch_job_spans < 2:
            raise DemoError(f"--batch-job-spans must be at least 2, got {self.batch_job_spans}")
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise DemoError(f"unknown fault(s) {', '.join(sorted(unknown))}; choose from: {', '.join(FAULTS)}")
        bad_flows = [flow for flow in self.flows if flow not in FLOW_WEIGHTS]
        if bad_flows or not self.flows:
            raise DemoError(f"flows must be some of: {', '.join(FLOWS)}")

    @property
    def otlp_url(self) -> str:
        return f"{self.endpoint}/v1/traces"


# --- the services ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    version: str
    host: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def resource(self) -> Resource:
        return Resource.create(
            {
                "service.name": self.name,
                "service.namespace": "shop",
                "service.version": self.version,
                "service.instance.id": f"{self.host}-1",
                "host.name": self.host,
                "host.arch": "amd64",
                "os.type": "linux",
                "deployment.environment": "demo",
                "deployment.environment.name": "demo",
                "k8s.namespace.name": "shop",
                "k8s.pod.name": self.host,
                "cloud.region": "eu-west-1",
                **self.extra,
            }
        )


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service("edge", "1.27.3", "edge-7c9f6d5b8-vx2lq", {"webengine.name": "nginx", "webengine.version": "1.27.3"}),
        Service("api-gateway", "2.14.0", "api-gateway-5d8c7b9f4-k9m2p"),
        Service("auth", "1.9.2", "auth-6f4d9c8b7-q8w3e"),
        Service("checkout", "3.2.1", "checkout-7b5c8d6f9-r4t6y"),
        Service("cart", "1.12.0", "cart-84c9f7d6b-u7i9o"),
        Service("payment", "4.0.7", "payment-6c7d8e9f5-p2a4s"),
        Service("inventory", "2.3.5", "inventory-59d7c8b6f-d5f7g"),
        Service("recommendation", "0.18.3", "recommendation-7f9c6b5d8-h3j5k"),
        Service("fulfillment", "1.4.0", "fulfillment-6b8d7c9f5-l2z4x"),
        Service(BATCH_JOB_SERVICE, "1.1.0", "search-indexer-cron-29118240-c6v8b"),
    )
}

# Instrumentation scopes as the usual OpenTelemetry instrumentations name themselves, so the UI shows real ones.
SCOPES = {
    "nginx": "ngx_otel_module",
    "http.server": "opentelemetry.instrumentation.fastapi",
    "http.client": "opentelemetry.instrumentation.httpx",
    "postgresql": "opentelemetry.instrumentation.psycopg",
    "redis": "opentelemetry.instrumentation.redis",
    "kafka": "opentelemetry.instrumentation.confluent_kafka",
}

# Per service: (db.namespace, server.address) of its PostgreSQL database.
POSTGRES = {
    "auth": ("auth", "pg-auth.shop.internal"),
    "checkout": ("orders", "pg-orders.shop.internal"),
    "payment": ("payments", "pg-payments.shop.internal"),
    "inventory": ("inventory", "pg-inventory.shop.internal"),
    "fulfillment": ("fulfillment", "pg-orders.shop.internal"),
    BATCH_JOB_SERVICE: ("catalog", "pg-catalog-replica.shop.internal"),
}
REDIS_HOSTS = {
    "auth": "redis-sessions.shop.internal",
    "cart": "redis-carts.shop.internal",
    "checkout": "redis-carts.shop.internal",
    "inventory": "redis-cache.shop.internal",
    "recommendation": "redis-cache.shop.internal",
    "payment": "redis-cache.shop.internal",
}
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "ShopApp/5.3.0 (Android 15; Pixel 8)",
)


# --- the plan of a request ------------------------------------------------------------------------------------


@dataclass(eq=False)
class SimEvent:
    name: str
    at: int
    attributes: dict[str, AttributeValue]


@dataclass(eq=False)
class SimSpan:
    """A span planned with times in nanoseconds relative to the plan's origin; replayed later into the SDK."""

    service: str
    name: str
    kind: SpanKind
    scope: str
    start: int
    end: int = 0
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None  # None: status UNSET; otherwise ERROR with this description
    events: list[SimEvent] = field(default_factory=list)
    children: list[SimSpan] = field(default_factory=list)
    links: list[SimSpan] = field(default_factory=list)

    def child(
        self,
        service: str,
        name: str,
        kind: SpanKind,
        scope: str,
        start: int,
        end: int = 0,
        attributes: dict[str, AttributeValue] | None = None,
    ) -> SimSpan:
        span = SimSpan(service, name, kind, scope, start, end, dict(attributes or {}))
        self.children.append(span)
        return span

    def walk(self) -> Iterator[SimSpan]:
        stack = [self]
        while stack:
            span = stack.pop()
            yield span
            stack.extend(reversed(span.children))

    def fail(self, description: str, *, error_type: str, exception: tuple[str, str, str] | None = None) -> None:
        """Mark ERROR; with `exception` (type, message, stacktrace) also record it as the SDK's exception event."""
        self.error = description
        self.attributes["error.type"] = error_type
        if exception is not None:
            exc_type, message, stacktrace = exception
            self.events.append(
                SimEvent(
                    "exception",
                    self.end or self.start,
                    {"exception.type": exc_type, "exception.message": message, "exception.stacktrace": stacktrace},
                )
            )


def _status_of(span: SimSpan) -> int:
    value = span.attributes.get("http.response.status_code")
    return value if isinstance(value, int) else 0


def plan_end(roots: list[SimSpan]) -> int:
    return max(span.end for root in roots for span in root.walk())


# --- faults -----------------------------------------------------------------------------------------------------


class Faults:
    """Which faults are active at a moment of the run: forced ones always, the others in occasional episodes."""

    def __init__(self, forced: frozenset[str], *, rng: random.Random, occasional: bool) -> None:
        self.forced = forced
        self.occasional = occasional
        self._rng = rng
        self._elapsed = 0.0
        self._episodes = {name: self._next_episode(0.0, gap) for name, (gap, _length) in EPISODES.items()}
        self._batch_job_next = 0.0 if "batch-job" in forced else (BATCH_JOB_FIRST_S if occasional else math.inf)

    def _next_episode(self, after: float, mean_gap: float) -> float:
        return after + self._rng.expovariate(1.0 / mean_gap)

    def tick(self, elapsed: float) -> None:
        self._elapsed = elapsed
        for name, (gap, length) in EPISODES.items():
            while elapsed >= self._episodes[name] + length:
                self._episodes[name] = self._next_episode(self._episodes[name] + length, gap)

    def active(self, name: str) -> bool:
        if name in self.forced:
            return True
        if not self.occasional or name not in EPISODES:
            return False
        return self._episodes[name] <= self._elapsed < self._episodes[name] + EPISODES[name][1]

    def now_active(self) -> list[str]:
        return [name for name in FAULTS if name in EPISODES and self.active(name)]

    def n_plus_one(self, rng: random.Random) -> bool:
        if "n-plus-one" in self.forced:
            return True
        return self.occasional and rng.random() < N_PLUS_ONE_CHANCE

    def batch_job_due(self) -> bool:
        """True once per scheduled run of the nightly job (at once when forced, then hourly when occasional)."""
        if self._elapsed < self._batch_job_next:
            return False
        self._batch_job_next = self._elapsed + BATCH_JOB_EVERY_S if self.occasional else math.inf
        return True


# --- the shop ---------------------------------------------------------------------------------------------------

RECOMMENDATION_TIMEOUT_MS = 300
PROCESSOR_TIMEOUT_MS = 800
PROCESSOR_FAILURE_MESSAGE = f"card processor did not answer within {PROCESSOR_TIMEOUT_MS} ms"
_HTTPX = "/usr/local/lib/python3.12/site-packages/httpx"
READ_TIMEOUT_STACKTRACE = f"""Traceback (most recent call last):
  File "/app/gateway/upstream.py", line 88, in fetch_recommendations
    response = await client.get(url, timeout=0.3)
  File "{_HTTPX}/_client.py", line 1814, in get
    return await self.request(
  File "{_HTTPX}/_transports/default.py", line 118, in map_httpcore_exceptions
    raise mapped_exc(message) from exc
httpx.ReadTimeout: timed out"""
CONNECT_TIMEOUT_STACKTRACE = f"""Traceback (most recent call last):
  File "/app/payment/processor.py", line 57, in create_intent
    response = await self._client.post("/v1/payment_intents", json=body)
  File "{_HTTPX}/_client.py", line 1859, in post
    return await self.request(
  File "{_HTTPX}/_transports/default.py", line 118, in map_httpcore_exceptions
    raise mapped_exc(message) from exc
httpx.ConnectTimeout: timed out"""
PROCESSOR_UNAVAILABLE_STACKTRACE = f"""Traceback (most recent call last):
  File "/app/payment/processor.py", line 57, in create_intent
    response = await self._client.post("/v1/payment_intents", json=body)
httpx.ConnectTimeout: timed out

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/payment/api/charges.py", line 142, in create_charge
    intent = await processor.create_intent(order_id, amount, currency)
  File "/app/payment/processor.py", line 61, in create_intent
    raise ProcessorUnavailable(f"card processor did not answer within {{timeout}} ms") from exc
payment.errors.ProcessorUnavailable: {PROCESSOR_FAILURE_MESSAGE}"""
PAYMENT_FAILED_STACKTRACE = """Traceback (most recent call last):
  File "/app/checkout/api/views.py", line 211, in create_checkout
    charge = await payments.charge(order, total)
  File "/app/checkout/clients/payments.py", line 74, in charge
    raise PaymentFailed(f"payment failed for order {order.id}: payment service answered {status} twice")
checkout.errors.PaymentFailed: """

_SQL_TARGET = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.I)

Handler = Callable[[SimSpan, int], tuple[int, int]]


class Shop:
    """Plans requests through the shop. Every method returns or fills `SimSpan` trees; nothing here talks to OTel.

    A handler `(server_span, t) -> (end, status)` plans a service's work for a request that reached it at `t`.
    """

    def __init__(self, rng: random.Random, faults: Faults) -> None:
        self.rng = rng
        self.faults = faults
        self._kafka_offset = rng.randrange(100_000, 900_000)

    # Random data ------------------------------------------------------------------------------------------------

    def _ms(self, median: float, spread: float = 0.35) -> int:
        """A latency with a long right tail around `median` milliseconds."""
        return max(NS_PER_US, int(median * math.exp(self.rng.gauss(0.0, spread)) * NS_PER_MS))

    def _uniform_ms(self, low: float, high: float) -> int:
        return int(self.rng.uniform(low, high) * NS_PER_MS)

    def _us(self, low: float, high: float) -> int:
        return int(self.rng.uniform(low, high) * NS_PER_US)

    def _hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(digits * 4):0{digits}x}"

    def _sku(self) -> str:
        return f"SKU-{self.rng.randrange(10_000, 10_600)}"

    def _user(self) -> str:
        return f"u{self.rng.randrange(1, 50_000)}"

    def _client_ip(self) -> str:
        return self.rng.choice(("203.0.113", "198.51.100", "192.0.2")) + f".{self.rng.randrange(1, 255)}"

    # Building blocks --------------------------------------------------------------------------------------------

    def _postgres(self, parent: SimSpan, at: int, query: str, *, median_ms: float = 1.5) -> SimSpan:
        """A PostgreSQL client span in the parent's service, named "<operation> <table>" as the semconv asks."""
        namespace, host = POSTGRES[parent.service]
        operation = query.split(None, 1)[0].upper()
        match = _SQL_TARGET.search(query)
        table = match.group(1) if match else ""
        if parent.service == "inventory" and self.faults.active("slow-db"):
            duration = self._uniform_ms(*SLOW_DB_MS)
        else:
            duration = self._ms(median_ms, 0.5)
        attributes: dict[str, AttributeValue] = {
            "db.system": "postgresql",
            "db.namespace": namespace,
            "db.operation.name": operation,
            "db.query.text": query,
            "server.address": host,
            "server.port": 5432,
        }
        if table:
            attributes["db.collection.name"] = table
        name = f"{operation} {table}".strip()
        return parent.child(parent.service, name, SpanKind.CLIENT, "postgresql", at, at + duration, attributes)

    def _redis(self, parent: SimSpan, at: int, command: str) -> SimSpan:
        operation = command.split(None, 1)[0]
        attributes: dict[str, AttributeValue] = {
            "db.system": "redis",
            "db.namespace": "0",
            "db.operation.name": operation,
            "db.query.text": command,
            "server.address": REDIS_HOSTS[parent.service],
            "server.port": 6379,
        }
        duration = self._ms(0.35, 0.4)
        return parent.child(parent.service, operation, SpanKind.CLIENT, "redis", at, at + duration, attributes)

    def _internal(
        self, parent: SimSpan, at: int, name: str, duration: int, attributes: dict[str, AttributeValue] | None = None
    ) -> SimSpan:
        return parent.child(parent.service, name, SpanKind.INTERNAL, "app", at, at + duration, attributes)

    def _external(self, parent: SimSpan, at: int, request: str, template: str, peer: str, status: int) -> SimSpan:
        """A call out of the cluster (`request` is "METHOD url"): a client span with no server span of ours under it."""
        method, url = request.split(" ", 1)
        parts = urllib.parse.urlsplit(url)
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.full": url,
            "url.template": template,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
            "peer.service": peer,
        }
        if status:
            attributes["http.response.status_code"] = status
        name = f"{method} {template}"
        return parent.child(parent.service, name, SpanKind.CLIENT, "http.client", at, attributes=attributes)

    def _http(self, parent: SimSpan, at: int, callee: str, request: str, path: str, handle: Handler) -> SimSpan:
        """A client span in the caller (`request` is "METHOD /route") and the callee's server span under it."""
        method, route = request.split(" ", 1)
        host = f"{callee}.shop.svc.cluster.local"
        client = parent.child(
            parent.service,
            request,
            SpanKind.CLIENT,
            "http.client",
            at,
            attributes={
                "http.request.method": method,
                "url.full": f"http://{host}:8080{path}",
                "url.template": route,
                "server.address": host,
                "server.port": 8080,
                "peer.service": callee,
            },
        )
        server_start = at + self._us(150, 600)
        server = client.child(
            callee,
            request,
            SpanKind.SERVER,
            "http.server",
            server_start,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": path.split("?", 1)[0],
                "url.scheme": "http",
                "server.address": host,
                "server.port": 8080,
                "client.address": f"10.42.{self.rng.randrange(0, 8)}.{self.rng.randrange(2, 250)}",
                "network.protocol.version": "1.1",
            },
        )
        if "?" in path:
            server.attributes["url.query"] = path.split("?", 1)[1]
        end, status = handle(server, server_start + self._us(40, 250))
        server.end = end + self._us(30, 200)
        client.end = server.end + self._us(150, 600)
        client.attributes["http.response.status_code"] = status
        server.attributes["http.response.status_code"] = status
        # Semantic conventions: 5xx is an error on both sides, 4xx only on the client's.
        if status >= 500 and server.error is None:
            server.fail("", error_type=str(status))
        if status >= 400:
            client.fail("", error_type=str(status))
        return client

    def _front(self, request: str, path: str, handle: Handler) -> SimSpan:
        """The edge proxy's SERVER span (the trace root) and the API gateway's SERVER span under it."""
        method, route = request.split(" ", 1)
        common: dict[str, AttributeValue] = {"http.request.method": method, "http.route": route, "url.path": path}
        edge = SimSpan(
            "edge",
            request,
            SpanKind.SERVER,
            "nginx",
            0,
            attributes={
                **common,
                "url.scheme": "https",
                "server.address": "shop.example.com",
                "server.port": 443,
                "client.address": self._client_ip(),
                "user_agent.original": self.rng.choice(USER_AGENTS),
                "network.protocol.version": "2",
            },
        )
        gateway_start = self._us(80, 400)
        gateway = edge.child(
            "api-gateway",
            request,
            SpanKind.SERVER,
            "http.server",
            gateway_start,
            attributes={
                **common,
                "url.scheme": "http",
                "server.address": "api-gateway.shop.svc.cluster.local",
                "server.port": 8080,
                "network.protocol.version": "1.1",
            },
        )
        end, status = handle(gateway, gateway_start + self._us(60, 300))
        gateway.end = end + self._us(50, 300)
        edge.end = gateway.end + self._us(100, 500)
        for span in (edge, gateway):
            span.attributes["http.response.status_code"] = status
            if status >= 500:
                span.fail("", error_type=str(status))
        return edge

    # Services ---------------------------------------------------------------------------------------------------

    def _verify_session(self, gateway: SimSpan, at: int) -> tuple[int, int]:
        session = self._hex(12)

        def handle(server: SimSpan, t: int) -> tuple[int, int]:
            t = self._redis(server, t, f"GET session:{session}").end + self._us(20, 120)
            if self.rng.random() < 0.08:  # cache miss: load from PostgreSQL and cache it again
                query = "SELECT user_id, expires_at FROM sessions WHERE id = $1"
                t = self._postgres(server, t, query).end + self._us(20, 100)
                t = self._redis(server, t, f"SET session:{session} ? EX 1800").end
            status = 401 if self.rng.random() < 0.01 else 200
            return t + self._us(50, 200), status

        client = self._http(gateway, at, "auth", "POST /v1/sessions/verify", "/v1/sessions/verify", handle)
        return client.end, _status_of(client)

    def _inventory_product(self, sku: str) -> Handler:
        def handle(server: SimSpan, t: int) -> tuple[int, int]:
            t = self._redis(server, t, f"GET product:{sku}").end + self._us(20, 100)
            if self.rng.random() < 0.25:
                query = "SELECT id, name, price_cents, description FROM products WHERE sku = $1"
                t = self._postgres(server, t, query, median_ms=2.5).end + self._us(20, 80)
                t = self._redis(server, t, f"SET product:{sku} ? EX 600").end
            query = "SELECT warehouse_id, available FROM inventory WHERE sku = $1"
            t = self._postgres(server, t + self._us(20, 100), query).end
            return t + self._us(100, 600), 200

        return handle

    def _inventory_stock(self, sku: str) -> Handler:
        def handle(server: SimSpan, t: int) -> tuple[int, int]:
            server.attributes["app.inventory.sku"] = sku
            t = self._postgres(server, t, "SELECT sum(available) FROM inventory WHERE sku = $1").end
            return t + self._us(50, 300), 200

        return handle

    def _inventory_reserve(self, items: list[str]) -> Handler:
        def handle(server: SimSpan, t: int) -> tuple[int, int]:
            server.attributes["app.reservation.items"] = len(items)
            query = "UPDATE inventory SET available = available - $1 WHERE sku = $2 AND available >= $1"
            for _ in items:
                t = self._postgres(server, t, query, median_ms=2.0).end + self._us(30, 150)
            return t + self._us(100, 400), 201

        return handle

    def _recommendations(self, user: str) -> Handler:
        def handle(server: SimSpan, t: int) -> tuple[int, int]:
            t = self._redis(server, t, f"GET recs:{user}").end + self._us(20, 100)
            if self.rng.random() < 0.35:  # not cached: score candidates
                load = self._internal(server, t, "load candidates", self._ms(6, 0.4), {"app.candidates": 200})
                # Now and then a cold model shard takes longer than the caller is willing to wait.
                slow = self.rng.random() < 0.01
                timeout = RECOMMENDATION_TIMEOUT_MS
                duration = self._uniform_ms(timeout + 50, timeout + 400) if slow else self._ms(14, 0.45)
                rank = self._internal(server, load.end, "rank candidates", duration, {"app.model": "two-tower-v7"})
                t = self._redis(server, rank.end + self._us(20, 80), f"SETEX recs:{user} 300 ?").end
            return t + self._us(100, 400), 200

        return handle

    def _call_recommendations(self, parent: SimSpan, at: int, request: str, path: str, user: str) -> SimSpan:
        client = self._http(parent, at, "recommendation", request, path, self._recommendations(user))
        timeout = RECOMMENDATION_TIMEOUT_MS * NS_PER_MS
        if client.end - client.start > timeout:
            # The caller stops waiting and carries on without recommendations; the server finishes regardless.
            client.end = client.start + timeout
            client.attributes.pop("http.response.status_code", None)
            client.fail(
                f"request timed out after {RECOMMENDATION_TIMEOUT_MS} ms",
                error_type="httpx.ReadTimeout",
                exception=("httpx.ReadTimeout", "timed out", READ_TIMEOUT_STACKTRACE),
            )
        return client

    def _charge(self, amount_cents: int, order: str) -> Handler:
        def handle(server: SimSpan, t: int) -> tuple[int, int]:
            server.attributes["app.payment.amount_cents"] = amount_cents
            server.attributes["app.payment.currency"] = "EUR"
            t = self._redis(server, t, f"SET idem:{order} ? NX EX 86400").end + self._us(30, 150)
            intents = "POST https://api.processor.example/v1/payment_intents"
            if self.faults.active("error-burst") and self.rng.random() < 0.85:
                processor = self._external(server, t, intents, "/v1/payment_intents", "card-processor", 0)
                processor.end = t + PROCESSOR_TIMEOUT_MS * NS_PER_MS + self._us(100, 900)
                processor.fail(
                    PROCESSOR_FAILURE_MESSAGE,
                    error_type="httpx.ConnectTimeout",
                    exception=("httpx.ConnectTimeout", "timed out", CONNECT_TIMEOUT_STACKTRACE),
                )
                server.end = processor.end + self._us(200, 800)
                server.fail(
                    PROCESSOR_FAILURE_MESSAGE,
                    error_type="payment.errors.ProcessorUnavailable",
                    exception=(
                        "payment.errors.ProcessorUnavailable",
                        PROCESSOR_FAILURE_MESSAGE,
                        PROCESSOR_UNAVAILABLE_STACKTRACE,
                    ),
                )
                return server.end, 500
            declined = self.rng.random() < 0.02
            processor = self._external(
                server, t, intents, "/v1/payment_intents", "card-processor", 402 if declined else 200
            )
            processor.end = t + self._ms(180, 0.35)
            if declined:
                processor.fail("", error_type="402")
                server.attributes["app.payment.outcome"] = "declined"
                return processor.end + self._us(200, 600), 402
            query = (
                "INSERT INTO payments (order_id, amount_cents, currency, intent_id, status) "
                "VALUES ($1, $2, $3, $4, 'captured')"
            )
            t = self._postgres(server, processor.end + self._us(50, 200), query, median_ms=2.5).end
            server.attributes["app.payment.outcome"] = "captured"
            return t + self._us(100, 500), 201

        return handle

    # Flows -----------------------------------------------------------------------------------------------------

    def browse(self) -> list[SimSpan]:
        sku, user = self._sku(), self._user()

        def gateway(span: SimSpan, t: int) -> tuple[int, int]:
            if self.rng.random() < 0.6:  # signed-in visitors; the rest browse anonymously
                t, status = self._verify_session(span, t)
                if status == 401:
                    return t + self._us(100, 300), 401
                t += self._us(30, 150)
            # Product details and recommendations are fetched concurrently.
            product = self._http(
                span, t, "inventory", "GET /v1/products/{sku}", f"/v1/products/{sku}", self._inventory_product(sku)
            )
            recs = self._call_recommendations(
                span, t + self._us(20, 120), "GET /v1/recommendations", f"/v1/recommendations?user={user}", user
            )
            t = max(product.end, recs.end) + self._us(20, 80)
            render = self._internal(span, t, "render product page", self._ms(3, 0.4))
            return render.end, 200

        return [self._front("GET /api/products/{sku}", f"/api/products/{sku}", gateway)]

    def add_to_cart(self) -> list[SimSpan]:
        sku, user, cart = self._sku(), self._user(), self._hex(16)

        def cart_handler(server: SimSpan, t: int) -> tuple[int, int]:
            stock = self._http(
                server, t, "inventory", "GET /v1/stock/{sku}", f"/v1/stock/{sku}", self._inventory_stock(sku)
            )
            t = stock.end + self._us(30, 150)
            if self.rng.random() < 0.05:
                server.attributes["app.cart.reason"] = "out_of_stock"
                return t + self._us(100, 300), 409
            t = self._redis(server, t, f"HSET cart:{cart} {sku} 1").end + self._us(10, 60)
            t = self._redis(server, t, f"EXPIRE cart:{cart} 604800").end
            return t + self._us(100, 400), 201

        def gateway(span: SimSpan, t: int) -> tuple[int, int]:
            t, status = self._verify_session(span, t)
            if status == 401:
                return t + self._us(100, 300), 401
            added = self._http(
                span,
                t + self._us(30, 150),
                "cart",
                "POST /v1/carts/{cart_id}/items",
                f"/v1/carts/{cart}/items",
                cart_handler,
            )
            t, status = added.end, _status_of(added)
            if status == 201:
                related = f"/v1/recommendations/related?sku={sku}"
                recs = self._call_recommendations(
                    span, t + self._us(30, 120), "GET /v1/recommendations/related", related, user
                )
                t = recs.end
            return t + self._us(100, 300), status

        return [self._front("POST /api/cart/items", "/api/cart/items", gateway)]

    def login(self) -> list[SimSpan]:
        ip, session = self._client_ip(), self._hex(12)

        def auth_handler(server: SimSpan, t: int) -> tuple[int, int]:
            t = self._redis(server, t, f"INCR ratelimit:login:{ip}").end + self._us(20, 80)
            query = "SELECT id, password_hash, disabled FROM users WHERE lower(email) = lower($1)"
            t = self._postgres(server, t, query, median_ms=1.8).end + self._us(20, 80)
            hashing: dict[str, AttributeValue] = {"app.hash.algorithm": "bcrypt", "app.hash.cost": 12}
            t = self._internal(server, t, "verify password", self._ms(75, 0.12), hashing).end + self._us(20, 80)
            if self.rng.random() < 0.06:
                query = "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1"
                t = self._postgres(server, t, query).end
                return t + self._us(100, 300), 401
            query = "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, now() + interval '30 days')"
            t = self._postgres(server, t, query).end + self._us(20, 80)
            t = self._redis(server, t, f"SET session:{session} ? EX 1800").end
            return t + self._us(100, 400), 200

        def gateway(span: SimSpan, t: int) -> tuple[int, int]:
            login = self._http(span, t, "auth", "POST /v1/login", "/v1/login", auth_handler)
            return login.end + self._us(50, 200), _status_of(login)

        return [self._front("POST /api/login", "/api/login", gateway)]

    def checkout(self) -> list[SimSpan]:
        cart, order = self._hex(16), f"ord_{self._hex(12)}"
        customer = f"c{self.rng.randrange(1, 20_000)}"
        items = [self._sku() for _ in range(self.rng.randint(1, 4))]
        amount = sum(self.rng.randrange(499, 12_999) for _ in items)
        published: list[SimSpan] = []

        def cart_handler(server: SimSpan, t: int) -> tuple[int, int]:
            server.attributes["app.cart.items"] = len(items)
            return self._redis(server, t, f"HGETALL cart:{cart}").end + self._us(80, 300), 200

        def order_history(server: SimSpan, t: int) -> int:
            if not self.faults.n_plus_one(self.rng):
                query = "SELECT count(*), sum(total_cents) FROM orders WHERE customer_id = $1 AND status = 'paid'"
                return self._postgres(server, t, query, median_ms=2.2).end
            # The ORM loads the customer, then each of their orders with a query of its own.
            t = self._postgres(server, t, "SELECT id, tier, order_ids FROM customers WHERE id = $1").end
            query = "SELECT id, total_cents, status, created_at FROM orders WHERE id = $1"
            for _ in range(N_PLUS_ONE_QUERIES):
                t = self._postgres(server, t + self._us(80, 350), query, median_ms=1.1).end
            return t

        def pay(server: SimSpan, t: int) -> tuple[int, int]:
            status = 0
            for attempt in range(2):  # one retry on a 5xx
                if attempt:
                    t += self._uniform_ms(40, 80)
                charge = self._http(
                    server, t, "payment", "POST /v1/charges", "/v1/charges", self._charge(amount, order)
                )
                charge.attributes["http.request.resend_count"] = attempt
                t, status = charge.end + self._us(50, 200), _status_of(charge)
                if status < 500:
                    break
            return t, status

        def checkout_handler(server: SimSpan, t: int) -> tuple[int, int]:
            server.attributes["app.order.id"] = order
            server.attributes["app.customer.id"] = customer
            loaded = self._http(server, t, "cart", "GET /v1/carts/{cart_id}", f"/v1/carts/{cart}", cart_handler)
            t = order_history(server, loaded.end + self._us(50, 200))
            t = self._internal(server, t + self._us(20, 80), "apply discounts", self._ms(0.8, 0.3)).end
            reserve = self._inventory_reserve(items)
            t = self._http(
                server, t + self._us(30, 120), "inventory", "POST /v1/reservations", "/v1/reservations", reserve
            ).end
            t, status = pay(server, t + self._us(50, 200))
            if status == 402:
                server.attributes["app.checkout.outcome"] = "declined"
                return t + self._us(100, 400), 402
            if status >= 500:
                message = f"payment failed for order {order}: payment service answered {status} twice"
                server.end = t + self._us(100, 300)
                server.fail(
                    message,
                    error_type="checkout.errors.PaymentFailed",
                    exception=(
                        "checkout.errors.PaymentFailed",
                        message,
                        PAYMENT_FAILED_STACKTRACE + message,
                    ),
                )
                return server.end, 502
            query = "INSERT INTO orders (id, customer_id, total_cents, status) VALUES ($1, $2, $3, 'paid')"
            t = self._postgres(server, t, query, median_ms=2.4).end
            publish = self._publish(server, t + self._us(30, 120), order)
            published.append(publish)
            t = self._redis(server, publish.end + self._us(20, 80), f"DEL cart:{cart}").end
            server.attributes["app.checkout.outcome"] = "paid"
            return t + self._us(100, 400), 201

        def gateway(span: SimSpan, t: int) -> tuple[int, int]:
            t, status = self._verify_session(span, t)
            if status == 401:
                return t + self._us(100, 300), 401
            done = self._http(
                span, t + self._us(30, 150), "checkout", "POST /v1/checkout", "/v1/checkout", checkout_handler
            )
            return done.end + self._us(50, 200), _status_of(done)

        roots = [self._front("POST /api/checkout", "/api/checkout", gateway)]
        roots.extend(self._fulfillment(publish, order) for publish in published)
        return roots

    def _kafka(self, operation: str, order: str) -> dict[str, AttributeValue]:
        return {
            "messaging.system": "kafka",
            "messaging.destination.name": "orders",
            "messaging.operation.type": operation,
            "messaging.operation.name": operation,
            "messaging.kafka.message.key": order,
            "server.address": "kafka-0.shop.internal",
            "server.port": 9092,
        }

    def _publish(self, parent: SimSpan, at: int, order: str) -> SimSpan:
        self._kafka_offset += 1
        attributes = self._kafka("send", order)
        attributes["messaging.destination.partition.id"] = str(self.rng.randrange(0, 6))
        end = at + self._ms(2.5, 0.5)
        return parent.child(parent.service, "send orders", SpanKind.PRODUCER, "kafka", at, end, attributes)

    def _fulfillment(self, producer: SimSpan, order: str) -> SimSpan:
        """The order consumer: a trace of its own, linked to the producing span (consumers batch, so no parent)."""
        start = producer.end + self._ms(25, 0.6)
        attributes = self._kafka("process", order)
        attributes["messaging.consumer.group.name"] = "fulfillment"
        attributes["messaging.kafka.offset"] = self._kafka_offset
        consume = SimSpan("fulfillment", "process orders", SpanKind.CONSUMER, "kafka", start, attributes=attributes)
        consume.links.append(producer)
        query = "INSERT INTO shipments (order_id, warehouse_id, status) VALUES ($1, $2, 'pending')"
        t = self._postgres(consume, start + self._us(100, 400), query).end + self._us(50, 200)
        label = self._external(
            consume, t, "POST https://api.carrier.example/v2/labels", "/v2/labels", "carrier-api", 201
        )
        label.end = t + self._ms(120, 0.4)
        query = "UPDATE orders SET status = 'fulfilling', label_id = $2 WHERE id = $1"
        consume.end = self._postgres(consume, label.end + self._us(50, 200), query).end + self._us(100, 400)
        return consume

    def request(self, flow: str) -> list[SimSpan]:
        """Plan one user request; return its trace's root first, then the roots of traces it causes."""
        planners: dict[str, Callable[[], list[SimSpan]]] = {
            "browse": self.browse,
            "add-to-cart": self.add_to_cart,
            "login": self.login,
            "checkout": self.checkout,
        }
        return planners[flow]()

    def pick_flow(self, flows: tuple[str, ...]) -> str:
        return self.rng.choices(flows, weights=[FLOW_WEIGHTS[flow] for flow in flows])[0]

    def reindex_job(self, spans: int) -> SimSpan:
        """The nightly search reindex: one trace of exactly `spans` spans, pages of products read and bulk-indexed."""
        job = SimSpan(
            BATCH_JOB_SERVICE,
            "reindex products",
            SpanKind.INTERNAL,
            "app",
            0,
            attributes={"app.job.name": "nightly-reindex", "app.job.trigger": "cron", "app.index": "products-v12"},
        )
        budget = spans - 1
        t = self._ms(5, 0.3)
        pages = 0
        select = "SELECT id, sku, name, description, price_cents FROM products WHERE id > $1 ORDER BY id LIMIT 100"
        while budget > 0:
            page = self._internal(job, t, "reindex page", 0, {"app.page": pages})
            budget -= 1
            u = t + self._us(20, 80)
            if budget > 0:
                u = self._postgres(page, u, select, median_ms=8).end
                budget -= 1
            documents = min(100, max(0, budget - 1))  # one span left over for the bulk request
            for _ in range(documents):
                u = self._internal(page, u + self._us(5, 20), "build document", self._us(60, 280)).end
            budget -= documents
            if budget > 0:
                bulk = self._external(
                    page,
                    u + self._us(20, 80),
                    "POST http://opensearch.shop.internal:9200/products-v12/_bulk",
                    "/{index}/_bulk",
                    "opensearch",
                    200,
                )
                bulk.end = bulk.start + self._ms(45, 0.4)
                budget -= 1
                u = bulk.end
            page.attributes["app.documents"] = documents
            page.end = u + self._us(20, 80)
            t = page.end + self._us(50, 200)
            pages += 1
        job.attributes["app.pages"] = pages
        job.end = t + self._ms(3, 0.3)
        return job


# --- export through the SDK -------------------------------------------------------------------------------------


class ExportStats:
    """What the exporters reported back, per service (export runs on the SDK's worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans_ok = 0
        self.spans_failed = 0
        self.batches: dict[str, int] = {}

    def record(self, service: str, spans: int, ok: bool) -> None:
        with self._lock:
            self.batches[service] = self.batches.get(service, 0) + 1
            if ok:
                self.spans_ok += spans
            else:
                self.spans_failed += spans


class _CountingExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, *, service: str, stats: ExportStats) -> None:
        self._inner = inner
        self._service = service
        self._stats = stats

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        self._stats.record(self._service, len(spans), result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class Telemetry:
    """One TracerProvider per simulated service, each exporting over OTLP/HTTP to the server."""

    def __init__(self, *, otlp_url: str, token: str, queue_size: int) -> None:
        self.stats = ExportStats()
        self.spans_created = 0
        self._providers: dict[str, TracerProvider] = {}
        self._tracers: dict[tuple[str, str], trace.Tracer] = {}
        for name, service in SERVICES.items():
            exporter = OTLPSpanExporter(
                endpoint=otlp_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=EXPORT_TIMEOUT_S,
                compression=Compression.Gzip,
            )
            # shutdown_on_exit=False: close() bounds the final flush; an atexit hook could hang on a dead server.
            provider = TracerProvider(resource=service.resource(), shutdown_on_exit=False)
            provider.add_span_processor(
                BatchSpanProcessor(
                    _CountingExporter(exporter, service=name, stats=self.stats),
                    max_queue_size=queue_size,
                    max_export_batch_size=EXPORT_BATCH_SIZE,
                    schedule_delay_millis=SCHEDULE_DELAY_MS,
                )
            )
            self._providers[name] = provider

    def _tracer(self, service: str, scope: str) -> trace.Tracer:
        key = (service, scope)
        tracer = self._tracers.get(key)
        if tracer is None:
            if scope == "app":
                tracer = self._providers[service].get_tracer(f"shop.{service}", SERVICES[service].version)
            else:
                tracer = self._providers[service].get_tracer(SCOPES[scope])
            self._tracers[key] = tracer
        return tracer

    def emit(self, roots: list[SimSpan], *, origin_ns: int, skew_ns: Mapping[str, int]) -> None:
        """Replay planned traces into the SDK; span times are `origin_ns` + plan time (+ the host's clock skew)."""
        emitted: dict[SimSpan, trace.Span] = {}
        for root in roots:
            self._emit(root, Context(), origin_ns, skew_ns, emitted)

    def _emit(
        self,
        sim: SimSpan,
        parent: Context,
        origin_ns: int,
        skew_ns: Mapping[str, int],
        emitted: dict[SimSpan, trace.Span],
    ) -> None:
        shift = origin_ns + skew_ns.get(sim.service, 0)
        links = [
            Link(emitted[target].get_span_context(), {"messaging.operation.type": "send"})
            for target in sim.links
            if target in emitted
        ]
        span = self._tracer(sim.service, sim.scope).start_span(
            sim.name,
            context=parent,
            kind=sim.kind,
            attributes=sim.attributes,
            links=links,
            start_time=shift + sim.start,
        )
        for event in sim.events:
            span.add_event(event.name, event.attributes, timestamp=shift + event.at)
        if sim.error is not None:
            span.set_status(Status(StatusCode.ERROR, sim.error or None))
        emitted[sim] = span
        context = trace.set_span_in_context(span)
        for child in sim.children:
            self._emit(child, context, origin_ns, skew_ns, emitted)
        span.end(end_time=shift + sim.end)
        self.spans_created += 1

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Flush and shut down every provider, all at once and bounded in time; False when time ran out."""

        def close_one(provider: TracerProvider) -> None:
            provider.force_flush()
            provider.shutdown()

        # Daemon threads: if the server stopped answering, the process may still exit when time is up.
        threads = [
            threading.Thread(target=close_one, args=(provider,), name=f"demo-close-{name}", daemon=True)
            for name, provider in self._providers.items()
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)


# --- running ----------------------------------------------------------------------------------------------------


def endpoint_check(
    config: DemoConfig, *, patience_s: float = PREFLIGHT_PATIENCE_S, stop: threading.Event | None = None
) -> None:
    """Send an empty export once so a wrong URL or token fails at start instead of in every background export.

    A server that is still starting (connection refused, 5xx, 429) is given `patience_s` to come up, unless `stop`
    is set meanwhile.
    """
    stop = stop or threading.Event()
    body = ExportTraceServiceRequest().SerializeToString()
    deadline = time.monotonic() + patience_s
    while True:
        request = urllib.request.Request(
            config.otlp_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {config.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=EXPORT_TIMEOUT_S):
                return
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status in (401, 403):
                raise DemoError(f"{config.otlp_url} rejected the ingest token ({status}); check --token")
            if status == 404:
                raise DemoError(f"{config.otlp_url} answered 404; is --endpoint the base URL of tracing-ui?")
            if status not in (429, 502, 503, 504):
                raise DemoError(f"{config.otlp_url} answered {status} to an empty export")
            problem = f"it answered {status}"
        except (urllib.error.URLError, OSError) as exc:
            problem = f"{getattr(exc, 'reason', exc)}"
        if time.monotonic() >= deadline:
            raise DemoError(f"cannot send traces to {config.otlp_url}: {problem}")
        if stop.wait(0.5):
            return


@dataclass
class DemoStats:
    requests: int = 0
    traces: int = 0
    spans_created: int = 0
    spans_exported: int = 0
    spans_failed: int = 0
    export_batches: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    flushed: bool = True

    def summary(self) -> str:
        return (
            f"{self.requests} requests, {self.traces} traces, {self.spans_exported} spans exported"
            f" ({self.spans_failed} failed) in {self.elapsed_s:.0f}s"
        )


def run(
    config: DemoConfig,
    *,
    stop: threading.Event | None = None,
    report: Callable[[str], None] | None = None,
) -> DemoStats:
    """Send demo traffic until `stop` is set, `config.count` requests were made or `config.duration` has passed.

    Requests arrive as a Poisson stream at `config.rate` per second. Every provider is flushed before returning.
    """
    stop = stop or threading.Event()
    endpoint_check(config, stop=stop)
    rng = random.Random(config.seed)
    faults = Faults(config.faults, rng=random.Random(rng.getrandbits(64)), occasional=config.random_faults)
    shop = Shop(rng, faults)
    queue_size = max(MIN_QUEUE_SIZE, 2 * config.batch_job_spans)
    telemetry = Telemetry(otlp_url=config.otlp_url, token=config.token, queue_size=queue_size)
    stats = DemoStats()
    started = time.monotonic()
    next_request = started
    next_report = started + config.progress_every

    def progress(now: float) -> None:
        stats.elapsed_s = now - started
        stats.spans_created = telemetry.spans_created
        stats.spans_exported = telemetry.stats.spans_ok
        stats.spans_failed = telemetry.stats.spans_failed
        if report is not None:
            active = faults.now_active()
            suffix = f"; faults active: {', '.join(active)}" if active else ""
            report(f"demo: {stats.summary()}{suffix}")

    def send(roots: list[SimSpan]) -> None:
        skew = {SKEWED_SERVICE: CLOCK_SKEW_NS} if faults.active("clock-skew") else {}
        # The plan ends "now": the SDK exports spans once they end, so a finished request is in the past.
        telemetry.emit(roots, origin_ns=time.time_ns() - plan_end(roots), skew_ns=skew)
        stats.traces += len(roots)

    try:
        while not stop.is_set():
            now = time.monotonic()
            faults.tick(now - started)
            if faults.batch_job_due():
                send([shop.reindex_job(config.batch_job_spans)])
            if config.count is not None and stats.requests >= config.count:
                break
            if config.duration is not None and now - started >= config.duration:
                break
            if now >= next_report:
                progress(now)
                next_report = now + config.progress_every
            if now < next_request:
                wake = min(next_request, next_report)
                if config.duration is not None:
                    wake = min(wake, started + config.duration)
                stop.wait(max(0.0, wake - now))
                continue
            send(shop.request(shop.pick_flow(config.flows)))
            stats.requests += 1
            # Catch up after a stall, but never with more than a second's worth of requests at once.
            next_request = max(next_request + rng.expovariate(config.rate), now - 1.0)
    finally:
        stats.flushed = telemetry.close()
    stats.export_batches = dict(telemetry.stats.batches)
    progress(time.monotonic())
    return stats


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM ask for a clean stop (flush, then exit); a second one gives up on the flush."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
