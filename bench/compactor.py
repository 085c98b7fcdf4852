"""The rollup pipeline's background half, run beside an ingest bench: merge deltas and pair traces continuously.

    python -m bench.compactor   (DATABASE_URL points at the bench database; stops on SIGTERM)

It does what the Celery beat task does every 10 s, but without pause and with EDGE_IDLE_SECONDS=0, so the bench
prices the whole pipeline (compaction and edge pairing competing for the same cores as ingest) at its busiest.
"""

from __future__ import annotations

import signal
import sys
import time


def main() -> int:
    import django

    django.setup()
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


if __name__ == "__main__":
    sys.exit(main())
