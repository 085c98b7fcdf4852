"""Shared vocabulary of every app: OpenTelemetry enums and ID formats, time parsing, histograms, the error document.

Imports no app of this project (the import-linter layers contract holds it).
"""
