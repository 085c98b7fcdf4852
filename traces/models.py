"""Trace store models.

`Span` is a PostgreSQL table partitioned by day on `start_ns` (created in migration 0002 with raw SQL, since Django
cannot declare partitions); the model maps it read-only for the ORM. Everything else is ordinary Django models.
IDs are stored as uuid (trace) and signed bigint (span), never as hex text.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class Project(models.Model):
    """A tenant: every span belongs to the project of the ingest token that sent it."""

    name = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects")

    def __str__(self) -> str:
        return self.name


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="unique_project_member")]


def regex_validate(value: str) -> None:
    import re

    from django.core.exceptions import ValidationError

    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"not a valid regular expression: {exc}") from exc


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_generate(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(30)}"


class IngestToken(models.Model):
    """Write-only credential for one project. Only the SHA-256 of the token is kept."""

    PREFIX = "tui_ingest"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ingest_tokens")
    name = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=20, help_text="First characters of the token, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.project})"


class ApiToken(models.Model):
    """Read-only personal token: sees exactly what its user may see."""

    PREFIX = "tui_api"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class Resource(models.Model):
    """A deduplicated OTLP resource (service.name, host, k8s, ...), shared by every span that reported it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    fingerprint = models.BinaryField(max_length=20)
    service_name = models.TextField()
    attributes = models.JSONField()
    schema_url = models.TextField(blank=True, default="")
    first_seen = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "fingerprint"], name="unique_resource_fingerprint"),
        ]


class TraceSummary(models.Model):
    """One row per (trace, project): time window, root, counts. Lets trace-by-id and search avoid scanning spans."""

    pk = models.CompositePrimaryKey("trace_id", "project")
    trace_id = models.UUIDField()
    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    start_ns = models.BigIntegerField()
    end_ns = models.BigIntegerField()
    duration_ns = models.GeneratedField(
        expression=models.F("end_ns") - models.F("start_ns"), output_field=models.BigIntegerField(), db_persist=True
    )
    root_service = models.TextField(blank=True, default="")
    root_name = models.TextField(blank=True, default="")
    span_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    services = ArrayField(models.TextField(), default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "traces"
        indexes = [
            models.Index(fields=["project", "-start_ns"], name="traces_project_start"),
            models.Index(fields=["project", "root_service", "-start_ns"], name="traces_project_root_start"),
        ]


class SpanKind(models.IntegerChoices):
    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(models.IntegerChoices):
    UNSET = 0
    OK = 1
    ERROR = 2


class Span(models.Model):
    """Read-only mapping of the partitioned `spans` table (see migration 0002 for the DDL and indexes)."""

    pk = models.CompositePrimaryKey("trace_id", "span_id", "kind", "start_ns", "project")
    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_constraint=False)
    start_ns = models.BigIntegerField()
    trace_id = models.UUIDField()
    span_id = models.BigIntegerField()
    parent_span_id = models.BigIntegerField(null=True)
    duration_ns = models.BigIntegerField()
    service_name = models.TextField()
    name = models.TextField()
    kind = models.SmallIntegerField(choices=SpanKind.choices)
    status_code = models.SmallIntegerField(choices=StatusCode.choices)
    status_message = models.TextField()
    resource = models.ForeignKey(Resource, on_delete=models.DO_NOTHING, db_constraint=False)
    scope_name = models.TextField()
    scope_version = models.TextField()
    trace_state = models.TextField()
    flags = models.IntegerField()
    http_method = models.TextField(null=True)
    http_route = models.TextField(null=True)
    http_status_code = models.IntegerField(null=True)
    db_system = models.TextField(null=True)
    db_name = models.TextField(null=True)
    peer_service = models.TextField(null=True)
    messaging_system = models.TextField(null=True)
    messaging_destination = models.TextField(null=True)
    server_address = models.TextField(null=True)
    attributes = models.JSONField()
    events = models.JSONField(null=True)
    links = models.JSONField(null=True)
    dropped_attributes_count = models.IntegerField()
    dropped_events_count = models.IntegerField()
    dropped_links_count = models.IntegerField()

    class Meta:
        managed = False
        db_table = "spans"


class RedactionRule(models.Model):
    """A per-project rule applied to attributes before anything is stored."""

    class Target(models.TextChoices):
        KEY = "key", "attribute key matches pattern"
        VALUE = "value", "attribute value matches pattern"

    class Action(models.TextChoices):
        REPLACE = "replace", "replace with ***"
        HASH = "hash", "replace with a SHA-256 hash"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="redaction_rules")
    name = models.CharField(max_length=100)
    target = models.CharField(max_length=10, choices=Target.choices)
    pattern = models.CharField(
        max_length=500,
        validators=[regex_validate],
        help_text="Python regular expression, searched case-insensitively.",
    )
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.REPLACE)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_redaction_rule_name")]

    def __str__(self) -> str:
        return f"{self.project}: {self.name}"


class ProjectIngestSettings(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="ingest_settings")
    default_redaction = models.BooleanField(
        default=True, help_text="Apply the built-in rules (secrets in keys, card numbers and bearer tokens in values)."
    )


class RedactionCount(models.Model):
    """How many attribute values each rule redacted, per project and day."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    day = models.DateField()
    rule = models.CharField(max_length=100)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day", "rule"], name="unique_redaction_count")]


class Operation(models.Model):
    """Every (service, span name, kind) seen, for the services and operations lists and autocomplete."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    service_name = models.TextField()
    name = models.TextField()
    kind = models.SmallIntegerField(choices=SpanKind.choices)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "service_name", "name", "kind"], name="unique_operation"),
        ]
        indexes = [models.Index(fields=["project", "service_name"], name="operation_project_service")]
