"""Benchmarks for tracing-ui: OTLP ingest through the full stack, trace-by-ID, trace search, and a bulk loader.

Run `python -m bench --help` (or `make bench`). Everything runs against dedicated databases on the same server as
DATABASE_URL (`tracing_ui_bench` for the span store, `tracing_ui_bench_ingest` for the ingest runs, which truncate
their tables), so development data is never touched.
"""
