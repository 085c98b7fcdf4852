from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from traces import demo


class Command(BaseCommand):
    help = (
        "Send demo traffic from a simulated web shop (edge, api-gateway, auth, cart, checkout, payment, inventory, "
        "recommendation, fulfillment) through the OpenTelemetry SDK to a running tracing-ui. Runs until Ctrl-C / "
        "SIGTERM, --duration or --count. Faults: " + ", ".join(demo.FAULTS) + "."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--endpoint", default=settings.SITE_ROOT, help="base URL of tracing-ui (default: %(default)s)"
        )
        parser.add_argument("--token", help="ingest token (default: the one in .data/credentials.json)")
        parser.add_argument("--rate", type=float, default=2.0, help="user requests (traces) per second; default 2")
        parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until stopped)")
        parser.add_argument(
            "--count", type=int, help="simulate exactly N user requests, then exit (checkouts add an order trace)"
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="NAME",
            help=f"force a fault for the whole run (batch-job: run the job at once); repeatable. "
            f"One of: {', '.join(demo.FAULTS)}",
        )
        parser.add_argument(
            "--flow",
            action="append",
            default=[],
            metavar="NAME",
            help=f"only these user flows; repeatable. One of: {', '.join(demo.FLOWS)}",
        )
        parser.add_argument(
            "--no-random-faults",
            action="store_true",
            help="only the forced faults (by default every fault also happens now and then)",
        )
        parser.add_argument(
            "--batch-job-spans",
            type=int,
            default=demo.BATCH_JOB_SPANS,
            help="spans in the nightly reindex job's trace (default: %(default)s)",
        )
        parser.add_argument("--seed", type=int, help="seed the simulation (trace and span IDs stay random)")
        parser.add_argument("--quiet", action="store_true", help="no progress output")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = options["token"] or demo.token_from_credentials(
                Path(settings.BASE_DIR) / ".data" / "credentials.json"
            )
            config = demo.DemoConfig(
                endpoint=options["endpoint"],
                token=token,
                rate=options["rate"],
                duration=options["duration"],
                count=options["count"],
                faults=demo.faults_parse(options["fault"]),
                flows=demo.flows_parse(options["flow"]),
                seed=options["seed"],
                batch_job_spans=options["batch_job_spans"],
                random_faults=not options["no_random_faults"],
            )
            stop = threading.Event()
            with demo.stop_on_signals(stop):
                stats = demo.run(config, stop=stop, report=None if options["quiet"] else self.stdout.write)
        except demo.DemoError as exc:
            raise CommandError(str(exc))
        except KeyboardInterrupt:
            raise CommandError("interrupted before every span was sent", returncode=130)
        if not stats.flushed:
            self.stderr.write("demo: gave up waiting for the last exports; some spans were not sent")
        if stats.spans_failed:
            self.stderr.write(f"demo: {stats.spans_failed} span(s) could not be sent (see the exporter's log above)")
