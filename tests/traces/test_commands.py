"""Management commands a newcomer and an operator run."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tests.conftest import now_ns
from traces.authentication import ingest_token_resolve
from traces.models import ApiToken, IngestToken, Project


def _run(*args: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_create_ingest_token_prints_a_working_token_and_stores_only_its_hash(db: None) -> None:
    raw, err = _run("create_ingest_token", "--project", "payments")
    assert "created project payments" in err
    assert raw.startswith("tui_ingest_")
    token = ingest_token_resolve(raw)
    assert token is not None and token.project.name == "payments"
    assert not IngestToken.objects.filter(token_hash=raw).exists()
    assert raw not in json.dumps(list(IngestToken.objects.values("token_hash", "prefix")))


def test_revoke_token_stops_it(db: None) -> None:
    raw, _ = _run("create_ingest_token", "--project", "payments")
    out, _ = _run("revoke_token", raw)
    assert "revoked 1" in out
    assert ingest_token_resolve(raw) is None
    with pytest.raises(CommandError):
        _run("revoke_token", raw)


def test_create_api_token_reads_as_the_user(member: Any) -> None:
    raw, _ = _run("create_api_token", "--user", "alice")
    assert ApiToken.objects.get(user=member).prefix == raw[:13]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/services").status_code == 200
    with pytest.raises(CommandError, match="no user"):
        _run("create_api_token", "--user", "nobody")


def test_bootstrap_creates_admin_project_and_token_once(db: None, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.json"
    first, _ = _run("bootstrap", "--credentials", str(credentials))
    second, _ = _run("bootstrap", "--credentials", str(credentials))
    assert first == second, "a second run reuses and prints the same credentials"
    saved = json.loads(credentials.read_text())
    assert saved["admin_password"] in first and saved["ingest_token"] in first
    assert ingest_token_resolve(saved["ingest_token"]).project.name == "demo"  # type: ignore[union-attr]
    assert Project.objects.get(name="demo").members.filter(username="admin").exists()
    assert APIClient().login(username="admin", password=saved["admin_password"])


def test_import_traces_reads_jaeger_json_with_progress(member: Any, tmp_path: Path, api: APIClient) -> None:
    start_us = now_ns() // 1000
    trace_id = "7a" * 16
    document = {
        "data": [
            {
                "traceID": trace_id,
                "processes": {
                    "p1": {
                        "serviceName": "frontend",
                        "tags": [{"key": "host.name", "type": "string", "value": "web-1"}],
                    }
                },
                "spans": [
                    {
                        "traceID": trace_id,
                        "spanID": "01" * 8,
                        "operationName": "GET /",
                        "references": [],
                        "startTime": start_us,
                        "duration": 5000,
                        "processID": "p1",
                        "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
                    },
                    {
                        "traceID": trace_id,
                        "spanID": "02" * 8,
                        "operationName": "render",
                        "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": "01" * 8}],
                        "startTime": start_us + 100,
                        "duration": 3000,
                        "processID": "p1",
                        "tags": [],
                    },
                ],
            }
        ]
    }
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document))

    out, err = _run("import_traces", str(path), "--project", "shop")
    assert "imported 2 span(s) into shop" in out
    assert "2/2 spans" in err and "#" in err, "a progress bar is drawn"
    trace = api.get(f"/api/v1/traces/{trace_id}").json()
    assert {s["span_id"]: s["parent_span_id"] for s in trace["spans"]} == {"01" * 8: None, "02" * 8: "01" * 8}

    again, _ = _run("import_traces", str(path), "--project", "shop")
    assert "imported 0 span(s)" in again and "2 already stored" in again


def test_import_traces_explains_bad_files(db: None, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(CommandError, match="not valid JSON"):
        _run("import_traces", str(path))
    with pytest.raises(CommandError, match="no such file"):
        _run("import_traces", str(tmp_path / "missing.json"))
