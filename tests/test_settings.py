"""Settings that change how the app talks to PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def _database_options(**env: str) -> dict[str, str]:
    """DATABASES["default"]["OPTIONS"] as a fresh process would build it from this environment."""
    code = "from tracing_ui import settings; import json; print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    options: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return options


@pytest.mark.django_db
def test_app_connections_run_without_jit() -> None:
    # JIT compiling took 30x longer than running the keyed queries of edge pairing (see settings.py).
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_db_jit_leaves_the_server_default_and_url_options_are_kept() -> None:
    url = "postgres://u@127.0.0.1:5432/db?options=-c%20statement_timeout%3D5000"
    assert _database_options(DATABASE_URL=url, DB_JIT="0")["options"] == "-c statement_timeout=5000 -c jit=off"
    assert _database_options(DATABASE_URL=url, DB_JIT="1")["options"] == "-c statement_timeout=5000"
