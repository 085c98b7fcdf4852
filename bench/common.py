"""Shared plumbing: bench databases, provisioning, the gunicorn server, HTTP, statistics, CPU accounting, reporting.

The bench never touches the development database: every URL it uses is DATABASE_URL with the database name swapped
for one of the bench names below, and in-process Django is only ever set up against such a URL (checked).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable
STORE_DB = "tracing_ui_bench"
# Ingest runs TRUNCATE between runs; a database of their own keeps the loaded span store (minutes to rebuild) intact.
INGEST_DB = "tracing_ui_bench_ingest"
# The service-map store: filled through OTLP/HTTP ingest (not the SQL loader), so rollups and edges are real.
MAP_DB = "tracing_ui_bench_map"
BENCH_DBS = (STORE_DB, INGEST_DB, MAP_DB)
PROJECT = "bench"
NS_PER_S = 1_000_000_000


# ---------------------------------------------------------------------------------------------------- databases


def base_database_url() -> str:
    """DATABASE_URL as settings.py resolves it (env, then the embedded services file, then the default).

    Resolved here rather than by importing tracing_ui.settings: importing it would freeze DATABASES to the dev
    database before we get the chance to point Django at a bench database.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    env_file = Path(os.environ.get("TRACING_UI_DATA_DIR", BASE_DIR / ".data")) / "services.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "DATABASE_URL" and value.strip():
                return value.strip()
    return "postgres://postgres@127.0.0.1:54329/tracing_ui"


def database_url(name: str) -> str:
    """The base URL with its database name swapped (same server, user and options)."""
    parts = urlsplit(base_database_url())
    return urlunsplit(parts._replace(path=f"/{name}"))


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    if db_name(url) not in BENCH_DBS:
        raise RuntimeError(f"refusing to open {db_name(url)!r}: the bench only writes to {BENCH_DBS}")
    return psycopg.connect(url, autocommit=autocommit)


def database_ensure(name: str) -> bool:
    """Create the bench database if missing (connecting to the server's `postgres` database). True if created."""
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def database_drop(name: str) -> bool:
    """Drop a bench database (never any other). True if it existed."""
    if name not in BENCH_DBS:
        raise RuntimeError(f"refusing to drop {name!r}: not a bench database")
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    return exists is not None


@dataclass(frozen=True)
class Credentials:
    url: str
    project_id: int
    ingest_token: str
    api_token: str


def child_env(url: str, **extra: str) -> dict[str, str]:
    """Environment for a Django child process (manage.py, gunicorn) pointed at a bench database."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="tracing_ui.settings",
        # Production-like: no per-query bookkeeping of DEBUG, quiet logs.
        DEBUG="0",
        LOG_LEVEL="WARNING",
        PYTHONWARNINGS="ignore",
    )
    env.update(extra)
    return env


def provision(name: str, *, quiet: bool = False) -> Credentials:
    """Create the database if needed, migrate it, create partitions, and mint fresh bench credentials.

    Each step is a subprocess with DATABASE_URL set, so this process's own Django (if any) is never involved.
    """
    url = database_url(name)
    created = database_ensure(name)
    env = child_env(url)
    started = time.perf_counter()
    for args in (["migrate", "--noinput", "-v", "0"], ["span_partitions"]):
        subprocess.run([PY, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True)
    out = subprocess.run(
        [PY, "-m", "bench.provision"], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    if not quiet:
        what = "created and migrated" if created else "migrated"
        say(f"database {name} {what}, partitions maintained ({time.perf_counter() - started:.1f}s)")
    return Credentials(
        url=url, project_id=data["project_id"], ingest_token=data["ingest_token"], api_token=data["api_token"]
    )


_django_url: str | None = None


def django_setup(url: str) -> None:
    """Set up Django in this process against a bench database (once; always the same database)."""
    global _django_url
    if _django_url is not None:
        if _django_url != url:
            raise RuntimeError("Django is already set up against another bench database in this process")
        return
    if db_name(url) not in BENCH_DBS:
        raise RuntimeError(f"refusing to set up Django against {db_name(url)!r}")
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tracing_ui.settings"
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.db import connection

    actual = connection.settings_dict["NAME"]
    if actual != db_name(url):
        raise RuntimeError(f"Django is connected to {actual!r}, expected {db_name(url)!r}")
    _django_url = url


# ---------------------------------------------------------------------------------------------------- server


def port_free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn serving tracing_ui.wsgi against a bench database, in its own process group (stopped by its pid)."""

    def __init__(self, url: str, *, workers: int, threads: int = 2, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.env = env or {}
        self.workers = workers
        self.threads = threads
        self.port = port_free()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/bench-gunicorn-{os.getpid()}-{self.port}.log")

    @property
    def label(self) -> str:
        return f"gunicorn {self.workers} workers x {self.threads} threads (gthread)"

    def start(self) -> Server:
        args = [
            PY,
            "-m",
            "gunicorn",
            "tracing_ui.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(self.threads),
            # A 100k-span trace document takes seconds to render; the default 30 s would kill the worker mid-way.
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                args, cwd=BASE_DIR, env=child_env(self.url, **self.env), stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/services")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"gunicorn did not answer within 60 s; see {self.log}")
        # Wait until every worker has booted, so the first timed requests do not pay for imports.
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        return self

    def worker_pids(self) -> list[int]:
        return children_of(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # Only the process group this object started (gunicorn master and its workers).
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------------- HTTP


def http_get(conn: http.client.HTTPConnection, path: str, token: str) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    for attempt in range(2):
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # gunicorn closes idle keep-alive connections after 2 s; reconnect once (http.client reopens lazily).
            conn.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------- CPU


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces: fields start after the closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


_postmaster: int | None = None


def postmaster_pid() -> int | None:
    """The PostgreSQL server process behind DATABASE_URL: the parent of our own backend (None if not local)."""
    global _postmaster
    if _postmaster is None:
        with psycopg.connect(database_url("postgres")) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            # Read while the backend is alive: once the connection closes its /proc entry goes away.
            fields = _stat_fields(int(row[0])) if row else None
        _postmaster = int(fields[1]) if fields else 0
    return _postmaster or None


def postgres_cpu_seconds() -> float:
    """CPU used so far by the server: postmaster + live backends + (via cutime/cstime) backends that exited.

    A backend that exits moves its CPU time into the postmaster's cutime/cstime, so the sum is monotonic and a
    difference of two samples also counts connections that opened and closed in between.
    """
    root = postmaster_pid()
    if root is None:
        return 0.0
    total = 0
    for pid in [root, *children_of(root)]:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / _TICKS


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


class CpuMeter:
    """CPU seconds used by the web workers, the PostgreSQL server and this process over an interval.

    PostgreSQL is counted server-wide (autovacuum, other databases included): on a shared machine an upper bound.
    """

    def __init__(self, web_pids: Sequence[int]) -> None:
        self.web_pids = list(web_pids)
        self.web0 = cpu_seconds(self.web_pids)
        self.pg0 = postgres_cpu_seconds()
        self.self0 = time.process_time()

    def stop(self) -> dict[str, float]:
        return {
            "web": cpu_seconds(self.web_pids) - self.web0,
            "postgres": postgres_cpu_seconds() - self.pg0,
            "client": time.process_time() - self.self0,
        }


# ---------------------------------------------------------------------------------------------------- stats


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: with 20 samples p95 is the 19th value, p99 the maximum)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def rate(n: float) -> str:
    return f"{n:,.0f}"


def say(message: str) -> None:
    print(f"  .. {message}", flush=True)


# ---------------------------------------------------------------------------------------------------- report


@dataclass
class Figure:
    section: str
    label: str
    value: str
    command: str
    note: str = ""


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(self, section: str, label: str, value: str, *, command: str, note: str = "") -> None:
        self.figures.append(Figure(section, label, value, command, note))

    def section(self, section: str) -> list[Figure]:
        return [f for f in self.figures if f.section == section]

    def print_section(self, section: str, title: str) -> None:
        figures = self.section(section)
        if not figures:
            return
        commands = sorted({f.command for f in figures})
        print()
        print(f"== {title}")
        for command in commands:
            print(f"   command: {command}")
        table([[f.label, f.value, f.note] for f in figures], ["figure", "value", "detail"])

    def print_summary(self, context: list[str]) -> None:
        if not self.figures:
            return
        print()
        print("=" * 100)
        print("SUMMARY")
        for line in context:
            print(f"   {line}")
        rows = []
        last = ""
        for f in self.figures:
            rows.append([f.label, f.value, f.command if f.command != last else '"'])
            last = f.command
        table(rows, ["figure", "value", "command"])


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    # The last column is free text: do not pad it.
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header[:-1], widths[:-1])) + "  " + header[-1]
    print("   " + line)
    print("   " + "-" * min(len(line) + 20, 118))
    for row in rows:
        cells = [f"{str(c):<{w}}" for c, w in zip(row[:-1], widths[:-1])]
        print("   " + "  ".join(cells) + "  " + str(row[-1]))


def machine_context() -> list[str]:
    load = os.getloadavg()
    try:
        # Read-only SHOWs on the maintenance database: works before any bench database exists.
        with psycopg.connect(database_url("postgres")) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            buffers = conn.execute("SHOW shared_buffers").fetchone()
        server = f"PostgreSQL {version[0] if version else '?'}, shared_buffers {buffers[0] if buffers else '?'}"
    except psycopg.Error:
        server = "PostgreSQL (unreachable)"
    return [
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min); {server}",
        f"bench databases {STORE_DB} (span store), {INGEST_DB} (ingest runs), {MAP_DB} (service map) "
        f"on {urlsplit(base_database_url()).netloc}",
        "figures are indicative when the machine is shared; nothing here is asserted",
    ]
