from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import (
    ApiToken,
    IngestToken,
    Project,
    ProjectIngestSettings,
    ProjectMembership,
    RedactionCount,
    RedactionRule,
)


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 1


class RedactionRuleInline(admin.TabularInline):
    model = RedactionRule
    extra = 0


class IngestSettingsInline(admin.StackedInline):
    model = ProjectIngestSettings
    can_delete = False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    inlines = [MembershipInline, IngestSettingsInline, RedactionRuleInline]


@admin.action(description="Revoke selected tokens")
def revoke(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    count = queryset.filter(revoked_at=None).update(revoked_at=timezone.now())
    modeladmin.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "project", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("project", "revoked_at")
    readonly_fields = ("prefix", "token_hash", "created_at", "last_used_at")
    actions = [revoke]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are shown once at creation: `manage.py create_ingest_token`


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "token_hash", "created_at", "last_used_at")
    actions = [revoke]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py create_api_token --user NAME`


@admin.register(RedactionCount)
class RedactionCountAdmin(admin.ModelAdmin):
    list_display = ("project", "day", "rule", "count")
    list_filter = ("project", "rule")
