"""Where notifications may go when a deployment turns private addresses off (``allow_private_model_hosts``):
a webhook or SMTP server on loopback is refused when saved (422 naming the field) and, for a channel saved
before the setting changed, when delivering: dead-lettered at once without retries (retrying cannot help),
the project's other channels told. In process, against a fresh migrated database and the real Postgres bus."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.bus import Message, Reject
from agiflow_lab.bus.postgres import PostgresBus
from agiflow_lab.bus.topics import NOTIFICATIONS
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import ValidationFailed
from agiflow_lab.notifications import store
from agiflow_lab.notifications.announce import event
from agiflow_lab.notifications.delivery import Notifier
from agiflow_lab.notifications.models import ChannelCreate, DeliveryMessage
from agiflow_lab.notifications.service import NotificationService
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.providers.hosts import HostPolicy
from agiflow_lab.providers.secrets import SecretBox

CLOSED, OPEN = HostPolicy(allow_private=False), HostPolicy(allow_private=True)
WEBHOOK = {"name": "local", "kind": "webhook", "webhook": {"url": "http://127.0.0.1:9/hook"}}
SMTP = {"name": "mail", "kind": "email",
        "email": {"host": "localhost", "port": 2525, "starttls": False, "sender": "lab@example.org", "to": ["a@example.org"]}}  # fmt: skip


KEY = Fernet.generate_key()


async def _cipher() -> SecretBox:
    return SecretBox([KEY])


async def services(db: Database, policy: HostPolicy) -> tuple[NotificationService, str]:
    authz = Authorizer(db)
    projects = ProjectService(db, authz)
    slug = f"p-{uuid.uuid4().hex[:8]}"
    await projects.ensure(slug, slug, "olivia")
    return NotificationService(db, authz, projects, _cipher, policy), slug


@pytest.mark.parametrize(("body", "field"), [(WEBHOOK, "webhook.url"), (SMTP, "email.host")])
async def test_a_private_receiver_is_refused_when_saved(db: Database, body: dict[str, object], field: str) -> None:
    notifications, slug = await services(db, CLOSED)
    with pytest.raises(ValidationFailed) as refused:
        await notifications.create_channel(Actor("olivia"), slug, ChannelCreate.model_validate(body))
    assert refused.value.details["errors"][0]["field"] == field
    assert "allow_private_model_hosts is off" in refused.value.details["errors"][0]["message"]
    opened, _ = await services(db, OPEN)  # the laptop default: a local receiver is fine
    await opened.create_channel(Actor("olivia"), slug, ChannelCreate.model_validate(body))


@pytest.mark.parametrize("body", [WEBHOOK, SMTP])
async def test_a_private_receiver_saved_earlier_is_refused_when_delivering(
    db: Database, body: dict[str, object]
) -> None:
    opened, slug = await services(db, OPEN)
    channel = await opened.create_channel(Actor("olivia"), slug, ChannelCreate.model_validate(body))
    told = await opened.create_channel(Actor("olivia"), slug, ChannelCreate(name="inbox", kind="in_app"))
    project_id = await opened.projects.resolve_id(slug)
    delivery = DeliveryMessage(project_id=project_id, channel_id=channel.id, event=event("test", "info", slug, "hi"))
    message = Message(id=str(uuid.uuid4()), topic=NOTIFICATIONS, key="k", payload=delivery.model_dump(mode="json"),
                      headers={}, attempt=1, created_at=datetime.now(UTC))  # fmt: skip
    notifier = Notifier(db, PostgresBus(db), _cipher, CLOSED)
    try:
        with pytest.raises(Reject, match="allow_private_model_hosts is off"):
            await notifier.handle(message)  # the first attempt: no retries for a refusal
    finally:
        await notifier.stop()
    async with db.connection() as conn:
        cur = await conn.execute("SELECT key, payload FROM control.bus_outbox WHERE topic = %s", (NOTIFICATIONS,))
        outbox = await cur.fetchall()
        assert await store.channel(conn, told.id) is not None
    # The dead letter is announced to the other channel only, naming the refused one.
    assert [(o["payload"]["channel_id"], o["payload"]["event"]["event"]) for o in outbox] == [
        (told.id, "bus.dead_letters")
    ]
    assert outbox[0]["payload"]["event"]["data"]["channel"] == channel.name
