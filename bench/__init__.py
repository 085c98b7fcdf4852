"""Benchmarks for tracing-ui: OTLP ingest through the full stack, trace-by-ID, trace search, a bulk loader, and the
rollup-backed reads (services list, service map).

Run `python -m bench --help` (or `make bench`). Everything runs against dedicated databases on the same server as
DATABASE_URL (`tracing_ui_bench` for the span store, `tracing_ui_bench_ingest` for the ingest runs, which truncate
their tables, `tracing_ui_bench_map` for the service-map store), so development data is never touched.
"""
