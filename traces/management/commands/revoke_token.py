from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from traces.services import token_revoke


class Command(BaseCommand):
    help = "Revoke an ingest or API token, given the token itself or the prefix shown in the admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token")

    def handle(self, *args: Any, **options: Any) -> None:
        revoked = token_revoke(prefix_or_token=options["token"])
        if not revoked:
            raise CommandError("no live token matches")
        self.stdout.write(f"revoked {revoked} token(s)")
