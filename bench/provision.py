"""Mint bench credentials in a bench database: `python -m bench.provision` with DATABASE_URL set by the caller.

Prints one JSON line: project id, a fresh ingest token and a fresh API token of a superuser. Earlier bench tokens
are deleted, so repeated runs do not pile them up. Run as a subprocess by bench.common.provision().
"""

from __future__ import annotations

import json
import os
import sys

from bench.common import BENCH_DBS, PROJECT, db_name


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    if db_name(url) not in BENCH_DBS:
        print(f"refusing to provision {db_name(url)!r}: not a bench database", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracing_ui.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from traces.models import ApiToken, IngestToken
    from traces.services import api_token_create, ingest_token_create, project_get_or_create, project_member_add

    project, _ = project_get_or_create(name=PROJECT)
    users = get_user_model().objects
    user = users.filter(username="bench").first()
    if user is None:
        # No password: the bench only authenticates with the API token.
        user = users.create_superuser("bench", "bench@localhost", None)
    project_member_add(project=project, user=user)
    IngestToken.objects.filter(project=project, name="bench").delete()
    ApiToken.objects.filter(user=user, name="bench").delete()
    _row, ingest_token = ingest_token_create(project=project, name="bench")
    _row2, api_token = api_token_create(user=user, name="bench")
    print(json.dumps({"project_id": project.pk, "ingest_token": ingest_token, "api_token": api_token}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
