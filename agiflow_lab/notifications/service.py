"""Notification rules: channels and their secrets, fanning an event out to a project's channels, in-app reads.

``announce(conn, ...)`` runs in the caller's transaction (an incident opening, a job failing): it writes one
``notifications`` message per enabled channel to the outbox, so the event and its deliveries commit together
or not at all. The ``Notifier`` consumer performs each delivery, retried with backoff by the bus, then
dead-lettered. Secrets (a webhook's signing secret, an SMTP password) are Fernet-encrypted with the key that
encrypts model API keys; a webhook's secret is shown once, when the channel is created.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agiflow_lab.audit import store as audit
from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.authz.policy import READ
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import Cursor, KeyInt, Page, check_limit
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, NotFound, ValidationFailed
from agiflow_lab.notifications import store
from agiflow_lab.notifications.announce import announce, event
from agiflow_lab.notifications.models import (
    Channel,
    ChannelCreate,
    ChannelCreated,
    ChannelUpdate,
    EmailView,
    Notification,
    WebhookSettings,
)
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.providers.hosts import HostPolicy
from agiflow_lab.providers.secrets import SecretBox
from agiflow_lab.traces.live import SpanActivity

RESOURCE = "agiflow:notifications"
CURSOR = Cursor[int](KeyInt)  # the last notification's id, newest first
Cipher = Callable[[], Awaitable[SecretBox]]


def channel_view(row: dict[str, Any]) -> Channel:
    config = row["config"]
    email = None
    if row["kind"] == "email":
        email = EmailView(
            **{k: v for k, v in config.items() if k != "password"}, has_password=row["secret"] is not None
        )
    return Channel(
        id=row["id"], project=row["project"], name=row["name"], kind=row["kind"],
        webhook=WebhookSettings.model_validate(config) if row["kind"] == "webhook" else None, email=email,
        enabled=row["enabled"], created_by=row["created_by"], created_at=row["created_at"],
    )  # fmt: skip


class NotificationService:
    def __init__(
        self, db: Database, authz: Authorizer, projects: ProjectService, cipher: Cipher, host_policy: HostPolicy
    ) -> None:
        self.db = db
        self.host_policy = host_policy  # where a webhook or SMTP server may be (the model connections' rule)
        self.authz = authz
        self.projects = projects
        self.cipher = cipher
        self.activity = SpanActivity(db, min_interval=0.2, channel=store.LIVE_CHANNEL, name="notification activity")

    # --- channels ------------------------------------------------------------------------------

    async def create_channel(self, actor: Actor, project: str, body: ChannelCreate) -> ChannelCreated:
        project_id = await self.projects.resolve_id(project)
        secret: str | None = None
        stored: bytes | None = None
        config: dict[str, Any] = {}
        if body.webhook is not None:
            await self.host_policy.check_url_on_save(body.webhook.url, "webhook.url")
            secret = "whsec_" + secrets.token_urlsafe(32)
            stored = (await self.cipher()).encrypt(secret)
            config = body.webhook.model_dump()
        elif body.email is not None:
            await self.host_policy.check_on_save(body.email.host, body.email.port, "email.host")
            config = body.email.model_dump(exclude={"password"})
            if body.email.password is not None:
                stored = (await self.cipher()).encrypt(body.email.password)
        async with self.db.transaction() as conn:
            channel_id = await store.insert_channel(conn, project_id, body.name, body.kind, config, stored, body.enabled,
                                                    actor.principal)  # fmt: skip
            if channel_id is None:
                raise Conflict(f"project {project!r} has a channel named {body.name!r} already", {"field": "name"})
            await audit.record(
                conn, project_id=project_id, actor=actor, action="notification_channel.create",
                resource_type="notification_channel", resource_id=channel_id,
                after={"name": body.name, "kind": body.kind, **config},
            )  # fmt: skip
            row = await store.channel(conn, channel_id)
        assert row is not None
        return ChannelCreated(**channel_view(row).model_dump(), secret=secret)

    async def _require(self, conn: Conn, project: str, name: str) -> dict[str, Any]:
        row = await store.channel_by_name(conn, await self.projects.resolve_id(project), name)
        if row is None:
            raise NotFound(f"project {project!r} has no notification channel {name!r}", {"field": "name"})
        return row

    async def channels(self, project: str) -> list[Channel]:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            return [channel_view(r) for r in await store.channels(conn, project_id)]

    async def channel(self, project: str, name: str) -> Channel:
        async with self.db.connection() as conn:
            return channel_view(await self._require(conn, project, name))

    async def update_channel(self, actor: Actor, project: str, name: str, body: ChannelUpdate) -> ChannelCreated:
        """Enable or disable a channel, replace its settings (checked like new ones) or a webhook's secret.
        Deliveries already on the bus go out with the settings of the moment they are made."""
        changes = body.model_dump(exclude_unset=True)
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name)
            kind = row["kind"]
            if wrong := sorted(({"webhook", "email"} - {kind}) & changes.keys()):
                raise ValidationFailed.of(wrong[0], f"the channel {name!r} is of kind {kind}")
            if body.rotate_secret and kind != "webhook":
                raise ValidationFailed.of("rotate_secret", "only a webhook has a signing secret")
            config, stored, secret = dict(row["config"]), row["secret"], None
            if body.webhook is not None:
                await self.host_policy.check_url_on_save(body.webhook.url, "webhook.url")
                config = body.webhook.model_dump()
            if body.email is not None:
                await self.host_policy.check_on_save(body.email.host, body.email.port, "email.host")
                config = body.email.model_dump(exclude={"password"})
                if "password" in changes["email"]:
                    password = body.email.password
                    stored = None if password is None else (await self.cipher()).encrypt(password)
            if body.rotate_secret:
                secret = "whsec_" + secrets.token_urlsafe(32)
                stored = (await self.cipher()).encrypt(secret)
            enabled = row["enabled"] if body.enabled is None else body.enabled
            await store.update_channel(conn, row["id"], config=config, secret=stored, enabled=enabled)
            await audit.record(
                conn, project_id=row["project_id"], actor=actor, action="notification_channel.update",
                resource_type="notification_channel", resource_id=row["id"],
                before={"enabled": row["enabled"], **{k: v for k, v in row["config"].items() if k != "password"}},
                after={"enabled": enabled, **config, "secret_rotated": body.rotate_secret,
                       "password_changed": "password" in changes.get("email", {})},
            )  # fmt: skip
            updated = await store.channel(conn, row["id"])
        assert updated is not None
        return ChannelCreated(**channel_view(updated).model_dump(), secret=secret)

    async def delete_channel(self, actor: Actor, project: str, name: str) -> None:
        """Deliveries still on the bus for it are dropped when they arrive."""
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name)
            await store.delete_channel(conn, row["id"])
            await audit.record(
                conn, project_id=row["project_id"], actor=actor, action="notification_channel.delete",
                resource_type="notification_channel", resource_id=row["id"], before={"name": name},
            )  # fmt: skip

    async def test(self, actor: Actor, project: str, name: str) -> str:
        """A test delivery to this one channel, on the bus like any other (so with its retries)."""
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name)
            what = event("test", "info", project, f"Test notification for channel {name}",
                         f"Sent by {actor.principal} from AGIFlow Lab.", data={"channel": name})  # fmt: skip
            ids = await announce(conn, row["project_id"], what, only_channel=row["id"])
        return ids[0]

    # --- in-app --------------------------------------------------------------------------------

    async def list(
        self, actor: Actor, project: str, *, unread: bool, cursor: str | None, limit: int
    ) -> Page[Notification]:
        check_limit(limit)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.notifications(conn, project_id, actor.principal, unread=unread,
                                             before=CURSOR.decode(cursor), limit=limit + 1)  # fmt: skip
        return Page[Notification](
            items=[Notification.model_validate(r) for r in rows[:limit]],
            next_cursor=CURSOR.next(rows, limit, lambda r: int(r["id"])),
        )

    async def unread(self, actor: Actor, project: str) -> int:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            return await store.unread_count(conn, project_id, actor.principal)

    async def mark_read(self, actor: Actor, project: str, notification_id: int | None) -> int:
        """Read by this caller only (each user has their own read state); None: all of the project's."""
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            if notification_id is not None and not await store.notification_exists(conn, project_id, notification_id):
                raise NotFound(f"no notification {notification_id} in project {project!r}",
                               {"field": "notification_id"})  # fmt: skip
            return await store.mark_read(conn, project_id, actor.principal, notification_id)

    async def follow(self, actor: Actor, project: str) -> AsyncIterator[None]:
        """Wake-ups when the project gets an in-app notification (checked before the first one)."""
        self.authz.check(actor, project, RESOURCE, READ)
        return self.activity.follow(await self.projects.resolve_id(project))
