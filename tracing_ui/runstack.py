"""`make run`: bring the whole stack up in the foreground and take it down cleanly on Ctrl-C.

Starts the embedded PostgreSQL / Redis unless DATABASE_URL / REDIS_URL are set, migrates, creates partitions, an
admin user and an ingest token (printed), then runs gunicorn, a Celery worker, Celery beat and a gentle stream of
demo traffic. Everything it started is stopped on Ctrl-C (or SIGTERM); the data under .data/ stays for next time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tracing_ui import devservices

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable


def _say(message: str) -> None:
    print(f"\033[1m[run]\033[0m {message}", flush=True)


def _manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=BASE_DIR, check=True)


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    started_services = []
    if not os.environ.get("DATABASE_URL"):
        was_up = devservices._port_open(devservices.PG_PORT)
        os.environ["DATABASE_URL"] = devservices.postgres_up()
        if not was_up:
            started_services.append("postgres")
    if not os.environ.get("REDIS_URL"):
        was_up = devservices._port_open(devservices.REDIS_PORT)
        os.environ["REDIS_URL"] = devservices.redis_up()
        if not was_up:
            started_services.append("redis")
    os.environ.setdefault("SITE_ROOT", f"http://127.0.0.1:{port}")
    _say(f"database {os.environ['DATABASE_URL']}  broker {os.environ['REDIS_URL']}")
    _manage("migrate", "--noinput")
    _manage("span_partitions")
    _manage("collectstatic", "--noinput", "-v", "0")
    _manage("bootstrap")
    credentials = json.loads((BASE_DIR / ".data" / "credentials.json").read_text())

    children: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str, args: list[str]) -> None:
        # Own process group, so Ctrl-C reaches us first and we stop children in order.
        children[name] = subprocess.Popen(args, cwd=BASE_DIR, start_new_session=True)

    spawn(
        "web",
        [
            PY,
            "-m",
            "gunicorn",
            "tracing_ui.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "3",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
            "--graceful-timeout",
            "10",
            "--access-logfile",
            "-" if os.environ.get("ACCESS_LOG") else "/dev/null",
        ],
    )
    spawn(
        "worker",
        [PY, "-m", "celery", "-A", "tracing_ui", "--quiet", "worker", "--loglevel", "WARNING", "--concurrency", "2"],
    )
    spawn(
        "beat",
        [
            PY,
            "-m",
            "celery",
            "-A",
            "tracing_ui",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(BASE_DIR / ".data" / "celerybeat-schedule"),
        ],
    )
    for _ in range(100):
        if devservices._port_open(port):
            break
        time.sleep(0.2)
    if os.environ.get("DEMO", "1") != "0":
        spawn(
            "demo",
            [
                PY,
                "manage.py",
                "demo",
                "--endpoint",
                f"http://127.0.0.1:{port}",
                "--token",
                credentials["ingest_token"],
                "--rate",
                os.environ.get("DEMO_RATE", "2"),
                "--quiet",
            ],
        )

    print(flush=True)
    _say(f"tracing-ui is up:  http://127.0.0.1:{port}/")
    _say(f"log in as admin / {credentials['admin_password']}")
    _say(f"ingest token ({credentials['project']}): {credentials['ingest_token']}")
    _say(f"OTLP/HTTP endpoint: http://127.0.0.1:{port}/v1/traces   API docs: http://127.0.0.1:{port}/api/docs/")
    _say("Ctrl-C stops everything.")

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in list(children.items()):
            if child.poll() is None:
                continue
            if name == "demo":
                # Demo traffic is a nicety: the stack stays up without it.
                _say(f"demo traffic stopped (exit code {child.returncode}); the server keeps running")
                del children[name]
                continue
            _say(f"{name} exited with code {child.returncode}; stopping")
            stopping, exit_code = True, 1
            break
        time.sleep(0.5)

    _say("stopping ...")
    for name in ("demo", "web", "beat", "worker"):
        running = children.get(name)
        if running is not None and running.poll() is None:
            running.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if "redis" in started_services:
        devservices.redis_down()
    if "postgres" in started_services:
        devservices.postgres_down()
    _say("stopped; data kept in .data/")
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
