from __future__ import annotations


class IngestError(Exception):
    """A request that cannot be taken at all; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
