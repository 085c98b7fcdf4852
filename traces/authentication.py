"""Credentials: ingest tokens (write-only, per project) and personal API tokens (read-only, per user)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken, IngestToken, token_hash


def bearer_token(request: HttpRequest) -> str | None:
    """The token from `Authorization: Bearer <token>` or `X-Api-Key: <token>`."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("X-Api-Key", "").strip()
    return api_key or None


def ingest_token_resolve(raw: str | None) -> IngestToken | None:
    """The live ingest token for a raw value, or None when missing, unknown or revoked."""
    if not raw or not raw.startswith(IngestToken.PREFIX):
        return None
    token = IngestToken.objects.select_related("project").filter(token_hash=token_hash(raw), revoked_at=None).first()
    if token is not None:
        now = timezone.now()
        # Written at most once a minute per token so ingest does not turn into token-row churn.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            IngestToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """DRF authentication by personal API token. Ingest tokens are refused: they can only write."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        raw = bearer_token(request._request)
        if raw is None:
            return None
        if raw.startswith(IngestToken.PREFIX):
            raise exceptions.AuthenticationFailed("ingest tokens can only send spans; use a personal API token")
        token = ApiToken.objects.select_related("user").filter(token_hash=token_hash(raw), revoked_at=None).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("invalid or revoked API token")
        now = timezone.now()
        # A write (and WAL flush) on every read would dominate fast API calls: record use once a minute.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
