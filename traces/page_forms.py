"""Forms of the trace pages."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from . import analysis, selectors, trace_selectors


class TraceCompareForm(forms.Form):
    """Two trace IDs, each parsed and looked up among the traces the user may see."""

    a = forms.CharField(label="Trace A (baseline)", max_length=64, strip=True)
    b = forms.CharField(label="Trace B (compared)", max_length=64, strip=True)

    def __init__(self, *args: Any, project_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project_ids = project_ids
        self.spans: dict[str, list[analysis.SpanLite]] = {}
        for name in ("a", "b"):
            self.fields[name].widget.attrs.update(
                {"placeholder": "32 hex characters", "spellcheck": "false", "autocomplete": "off", "class": "mono"}
            )

    def _trace_id(self, name: str) -> uuid.UUID:
        try:
            return selectors.trace_id_parse(self.cleaned_data[name])
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc

    def clean_a(self) -> uuid.UUID:
        return self._trace_id("a")

    def clean_b(self) -> uuid.UUID:
        return self._trace_id("b")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("a", "b"):
            trace_id = cleaned.get(name)
            if trace_id is None:
                continue
            spans = trace_selectors.trace_spans_lite(project_ids=self.project_ids, trace_id=trace_id)
            if spans is None:
                self.add_error(name, f"Trace {trace_id.hex} was not found (or is in a project you cannot see).")
            else:
                self.spans[name] = spans
        return cleaned
