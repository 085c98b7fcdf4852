from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from traces.authentication import ingest_token_resolve
from traces.services import ingest_token_create, project_get_or_create, project_member_add


class Command(BaseCommand):
    help = (
        "Make a development instance usable: an admin user, a `demo` project and an ingest token, created if missing. "
        "Credentials are kept in .data/credentials.json (git-ignored) so a second run can print them again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--credentials", default=str(Path(settings.BASE_DIR) / ".data" / "credentials.json"))
        parser.add_argument("--project", default="demo")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["credentials"])
        saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        users = get_user_model().objects
        admin = users.filter(username="admin").first()
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = users.create_superuser("admin", "admin@localhost", password)
            saved["admin_password"] = password
        elif "admin_password" not in saved:
            saved["admin_password"] = "(set before this bootstrap; unchanged)"
        project, _ = project_get_or_create(name=options["project"])
        project_member_add(project=project, user=admin)
        token = saved.get("ingest_token")
        if token is None or ingest_token_resolve(token) is None:
            _row, token = ingest_token_create(project=project, name="make run demo traffic")
            saved["ingest_token"] = token
        saved["project"] = project.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=2))
        path.chmod(0o600)
        self.stdout.write(f"admin user:     admin / {saved['admin_password']}")
        self.stdout.write(f"ingest token:   {token}  (project {project.name})")
