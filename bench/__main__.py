"""tracing-ui benchmarks (bench/__init__.py says which databases they use). Figures are printed, never asserted.

    python -m bench                     default suite: ingest, trace-by-ID, search on a 1M-span store, map (10M)
    python -m bench ingest              OTLP/HTTP end-to-end vs raw COPY ceiling, bytes per span
    python -m bench browser             trace page: navigation to a usable waterfall for 1k / 10k / 100k spans
    python -m bench trace               GET /api/v1/traces/<id> for 100 / 10k / 100k-span traces
    python -m bench search              GET /api/v1/traces searches (store of BENCH_SPANS spans, default 1M)
    python -m bench load --spans N      fill the bench store to N spans over the last 7 days (--reset: from empty)
    python -m bench map --spans N       services list + service map over 1 h / 24 h on an N-span store filled by
                                        OTLP/HTTP ingest over the last 24 h (default 10M; reused when big enough)
    python -m bench all                 everything, with more requests and repetitions

BENCH_SPANS=10000000 makes search (and the default suite) run against a 10M-span store, loading it first if needed.
The map section (in default and all) uses its own store of --spans / BENCH_SPANS spans, 10M when neither is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import common


def _workers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="default",
        choices=["default", "ingest", "trace", "search", "load", "map", "browser", "all"],
    )
    parser.add_argument(
        "--spans",
        type=int,
        default=None,
        help="store size for load / search / map (default: BENCH_SPANS or 1,000,000; 10,000,000 for load and map)",
    )
    parser.add_argument("--requests", type=int, default=None, help="ingest: 512-span requests per run (default 200)")
    parser.add_argument("--workers", type=_workers, default=None, help="ingest: gunicorn worker counts, e.g. 2,4")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker (default 2)")
    parser.add_argument(
        "--reps", type=int, default=None, help="search / map: timed repetitions per query (default 40 / 20)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="load: concurrent loader connections (default 2)")
    parser.add_argument("--reset", action="store_true", help="load / search / map: empty the bench store first")
    parser.add_argument("--no-gzip", action="store_true", help="ingest: skip the gzip-body run")
    parser.add_argument("--seed", type=int, default=20261121, help="ingest / map: payload generator seed")
    args = parser.parse_args(argv)

    env_spans = os.environ.get("BENCH_SPANS")
    store_spans = args.spans or (int(env_spans) if env_spans else 1_000_000)
    full = args.command == "all"
    report = common.Report()
    started = time.perf_counter()
    print(f"tracing-ui bench: {args.command} (started {time.strftime('%Y-%m-%d %H:%M:%S')})")
    for line in common.machine_context():
        print(f"   {line}")

    if args.command in ("default", "all", "ingest"):
        from . import ingest

        ingest.run(
            report,
            requests=args.requests or (400 if full else 200),
            workers=args.workers or ([1, 2, 3, 4] if full else [2, 4]),
            threads=args.threads,
            gzip_run=not args.no_gzip,
            seed=args.seed,
        )
        report.print_section(ingest.SECTION, "INGEST (OTLP/HTTP protobuf, 512-span requests)")

    if args.command == "load":
        from . import loader

        loader.run(
            report, spans=args.spans or (int(env_spans) if env_spans else 10_000_000), jobs=args.jobs, reset=args.reset
        )
        report.print_section(loader.SECTION, "LOADER")

    if args.command in ("default", "all", "trace", "search"):
        from . import loader, query, trace

        creds = common.provision(common.STORE_DB)
        held = 0
        if args.command != "trace":
            # A bigger store than asked for is used as it is (loading never deletes); --reset rebuilds it to size.
            held = loader.run(report, spans=store_spans, jobs=args.jobs, creds=creds, reset=args.reset)
            report.print_section(loader.SECTION, "LOADER")
        common.django_setup(creds.url)
        with common.Server(creds.url, workers=2, threads=args.threads) as server:
            common.say(f"read API served by {server.label} on port {server.port}")
            if args.command in ("default", "all", "trace"):
                trace.run(report, creds=creds, server=server, reps_scale=2 if full else 1)
                report.print_section(trace.SECTION, "TRACE BY ID (GET /api/v1/traces/<id>)")
            if args.command in ("default", "all", "search"):
                query.run(
                    report,
                    creds=creds,
                    server=server,
                    reps=args.reps or (100 if full else 40),
                    store_spans=store_spans,
                    held=held,
                )
                report.print_section(
                    query.SECTION, f"SEARCH (GET /api/v1/traces, HTTP p50 / p99) on the {held:,}-span store"
                )

    if args.command in ("default", "all", "map"):
        from . import rollup_reads

        map_spans = args.spans or (int(env_spans) if env_spans else rollup_reads.DEFAULT_SPANS)
        map_reps = args.reps or (50 if full else 20)
        rollup_reads.run(
            report,
            spans=map_spans,
            reps=map_reps,
            workers=(args.workers or [2])[0],
            threads=args.threads,
            reset=args.reset,
            seed=args.seed,
            command=f"python -m bench map --spans {map_spans} --reps {map_reps}",
        )
        report.print_section(
            rollup_reads.SECTION, "SERVICES LIST + SERVICE MAP (rollup-backed reads, HTTP p50 / p99; goal < 300 ms)"
        )

    if args.command in ("default", "all", "browser"):
        import subprocess

        # Its own process: it sets Django up against the scratch ingest database, which this one cannot switch to.
        print("\nTRACE PAGE IN HEADLESS CHROMIUM  (python -m bench.browser)", flush=True)
        subprocess.run([sys.executable, "-m", "bench.browser"], check=False)

    report.print_summary([*common.machine_context(), f"total bench time {time.perf_counter() - started:.0f}s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
