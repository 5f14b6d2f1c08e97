"""The notification contract: channels a client creates and reads, the events they carry, the bus message."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

ChannelKind = Literal["in_app", "webhook", "email"]
EventType = Literal[
    "alert.firing", "alert.resolved", "job.failed", "run.failed", "schedule.pass_rate_below_gate", "worker.lost",
    "bus.dead_letters", "test",
]  # fmt: skip
Severity = Literal["info", "warning", "critical"]
WebhookFormat = Literal["json", "slack"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)+$")


def check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value) or len(value) > 254:
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="http(s) URL the JSON body is POSTed to")
    format: WebhookFormat = Field(
        "json", description='json: the event as JSON; slack: a Slack-compatible body {"text": ...}'
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=255, description="SMTP server")
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before logging in")
    username: str | None = Field(None, max_length=255)
    password: str | None = Field(None, max_length=1000, description="Stored encrypted; never returned")
    sender: str = Field(max_length=254, description="The From address")
    to: list[str] = Field(min_length=1, max_length=50, description="Recipients")

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return check_email(value)

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        return [check_email(v) for v in value]


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    kind: ChannelKind
    webhook: WebhookSettings | None = Field(None, validate_default=True, description="With kind=webhook")
    email: EmailSettings | None = Field(None, validate_default=True, description="With kind=email")
    enabled: bool = True

    @field_validator("webhook", "email")
    @classmethod
    def _settings_of_kind(cls, value: BaseModel | None, info: ValidationInfo) -> BaseModel | None:
        kind = info.field_name
        if "kind" in info.data and (value is not None) != (info.data["kind"] == kind):
            raise ValueError(f"{kind} settings are {'only for' if value is not None else 'required with'} kind={kind}")
        return value


class ChannelUpdate(BaseModel):
    """PATCH: only the fields sent change. Settings are replaced whole and must be of the channel's kind; an
    e-mail edit without ``password`` keeps the stored one (send ``"password": null`` to remove it)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    webhook: WebhookSettings | None = Field(None, description="A webhook channel's new settings")
    email: EmailSettings | None = Field(None, description="An e-mail channel's new settings")
    rotate_secret: bool = Field(
        False, description="A webhook: replace its signing secret; the new one is in this answer only"
    )


class EmailView(BaseModel):
    host: str
    port: int
    starttls: bool
    username: str | None
    has_password: bool
    sender: str
    to: list[str]


class Channel(BaseModel):
    id: str
    project: str
    name: str
    kind: ChannelKind
    webhook: WebhookSettings | None
    email: EmailView | None
    enabled: bool
    created_by: str
    created_at: datetime


class ChannelCreated(Channel):
    secret: str | None = Field(
        description="A webhook's signing secret: shown this once (X-Agiflow-Signature: t=<unix>,v1=<hex "
        "HMAC-SHA256 of '<t>.<body>'>); null for other kinds"
    )


class TestSent(BaseModel):
    message_id: str = Field(description="The delivery's id (the webhook's X-Agiflow-Delivery header)")


class Event(BaseModel):
    """What happened, as every channel tells it."""

    event: EventType
    severity: Severity
    project: str
    title: str
    body: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class DeliveryMessage(BaseModel):
    """A message on the ``notifications`` topic: one event for one channel (its key: project id and channel)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["delivery"] = "delivery"
    project_id: int
    channel_id: str
    event: Event


class Notification(BaseModel):
    """An in-app notification, with the caller's read state."""

    id: int
    project: str
    event: EventType
    severity: Severity
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read: bool


class Unread(BaseModel):
    unread: int
