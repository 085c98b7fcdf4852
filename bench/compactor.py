"""The rollup pipeline's background half, run beside an ingest bench: merge deltas and pair traces continuously.

    python -m bench.compactor           (DATABASE_URL points at the bench database; stops on SIGTERM)
    python -m bench.compactor --drain   work off the backlog once, phase by phase, and print what each phase cost

The first form does what the Celery beat task does every 10 s, but without pause and with EDGE_IDLE_SECONDS=0, so
the bench prices the whole pipeline (compaction and edge pairing competing for the same cores as ingest) at its
busiest. The second prices each phase on its own (wall time, this process's CPU, PostgreSQL's CPU): the figures a
deployment is sized by.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any


def _loop() -> int:
    from dashboards.services import edges_rollup, rollups_compact

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    deltas = traces = 0
    while not stopping:
        merged = rollups_compact()
        paired = edges_rollup(idle_seconds=0)
        deltas += merged.deltas
        traces += paired.traces
        if not merged.deltas and not paired.traces:
            time.sleep(0.5)
    print(f"compactor: merged {deltas} deltas, paired {traces} traces", flush=True)
    return 0


def drain_phase(step: Any, amount: str, *, progress: Any = None, every: float = 10.0) -> dict[str, Any]:
    """Call `step` (rollups_compact or an edges_rollup) until it reports no `amount` left, waiting while another
    process holds the compactor lock. Returns what it did and cost: done, rows, calls, seconds, this process's CPU
    and PostgreSQL's. `progress(done, seconds)` is called every `every` seconds."""
    from bench.common import postgres_cpu_seconds

    wall0, cpu0, pg0 = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
    last = wall0
    done = rows = calls = 0
    while True:
        report = step()
        calls += 1
        if report.busy:
            time.sleep(0.5)
            continue
        done += getattr(report, amount)
        rows += report.rows_written
        if progress is not None and time.perf_counter() - last >= every:
            last = time.perf_counter()
            progress(done, last - wall0)
        if not getattr(report, amount):
            return {
                "done": done,
                "rows": rows,
                "calls": calls,
                "seconds": time.perf_counter() - wall0,
                "worker_cpu": time.process_time() - cpu0,
                "postgres_cpu": postgres_cpu_seconds() - pg0,
                "last": report,
            }


def _drain() -> int:
    from dashboards.services import edges_rollup, rollups_compact

    keep = ("done", "seconds", "worker_cpu", "postgres_cpu")
    phases = {
        "compaction": drain_phase(rollups_compact, "deltas"),
        "pairing": drain_phase(lambda: edges_rollup(idle_seconds=0), "traces"),
    }
    print(json.dumps({name: {key: phase[key] for key in keep} for name, phase in phases.items()}), flush=True)
    return 0


def main() -> int:
    import django

    django.setup()
    return _drain() if "--drain" in sys.argv[1:] else _loop()


if __name__ == "__main__":
    sys.exit(main())
