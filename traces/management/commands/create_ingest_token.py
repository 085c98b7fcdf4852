from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from traces.services import ingest_token_create, project_get_or_create


class Command(BaseCommand):
    help = "Create an ingest token for a project (created if missing) and print it. It is shown only once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project name (a slug)")
        parser.add_argument("--name", default="", help="what the token is for")

    def handle(self, *args: Any, **options: Any) -> None:
        project, created = project_get_or_create(name=options["project"])
        if created:
            self.stderr.write(f"created project {project.name}")
        _token, raw = ingest_token_create(project=project, name=options["name"])
        self.stdout.write(raw)
