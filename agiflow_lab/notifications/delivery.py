"""The ``notifications`` consumer: performs each delivery message once it can, or leaves it to the bus.

Returning acks; raising retries with the bus's exponential backoff (``RetryPolicy``) and, after its last
attempt, dead-letters the message, where ``/bus/dead-letters`` shows it. A receiver that is down for some
attempts therefore loses nothing. Deliveries are at-least-once: a delivery that succeeded is marked in
``control.processed_messages`` (keyed on the message id) and a redelivery of it does nothing; the webhook's
``X-Agiflow-Delivery`` header (the message id) lets a receiver drop the rare duplicate (a crash between the
POST and the mark). Secrets are decrypted here, in the trusted process, and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import time
from email.message import EmailMessage
from typing import Any

import httpx
from pydantic import ValidationError

from agiflow_lab.bus.base import Bus, Message, Reject
from agiflow_lab.bus.idempotency import first_time
from agiflow_lab.bus.membership import Membership
from agiflow_lab.bus.topics import NOTIFICATIONS
from agiflow_lab.db.database import Database
from agiflow_lab.notifications import builtin, store
from agiflow_lab.notifications.models import DeliveryMessage, Event
from agiflow_lab.notifications.service import Cipher
from agiflow_lab.providers.hosts import HostPolicy, HostRefused
from agiflow_lab.providers.transport import blocked_host, guarded_httpx_client

log = logging.getLogger(__name__)

GROUP = "agiflow-notifier"
CONSUMER = "notifier"  # the idempotency markers' consumer name
IN_FLIGHT = 8
WEBHOOK_TIMEOUT = 10.0
SMTP_TIMEOUT = 15.0
TELL_EVERY = 3600.0  # seconds between two "channel X is failing" announcements for one channel


class DeliveryFailed(Exception):
    """The receiver refused or could not be reached; the bus retries."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``: what ``X-Agiflow-Signature`` carries."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def webhook_body(message_id: str, what: Event, fmt: str) -> bytes:
    if fmt == "slack":
        text = f"[{what.severity}] {what.title}" + (f"\n{what.body}" if what.body else "")
        return json.dumps({"text": text}).encode()
    return json.dumps({"id": message_id, **what.model_dump(mode="json")}).encode()


def _send_mail(config: dict[str, Any], password: str | None, mail: EmailMessage) -> None:
    """Blocking (smtplib): run in a thread."""
    with smtplib.SMTP(config["host"], config["port"], timeout=SMTP_TIMEOUT) as smtp:
        if config["starttls"]:
            smtp.starttls()
        if config.get("username") and password is not None:
            smtp.login(config["username"], password)
        smtp.send_message(mail)


class Notifier:
    def __init__(self, db: Database, bus: Bus, cipher: Cipher, host_policy: HostPolicy) -> None:
        self.db = db
        self.cipher = cipher
        self.host_policy = host_policy
        self.membership = Membership(bus, [NOTIFICATIONS], GROUP, self.handle, max_in_flight=IN_FLIGHT,
                                     name="notifier")  # fmt: skip
        self.retry = bus.retry
        # Connects only where the host policy allows, to the very address it checked (no DNS rebinding).
        self._http = guarded_httpx_client(host_policy, WEBHOOK_TIMEOUT)
        self._told: dict[str, float] = {}  # channel id → when its failing was last announced (monotonic)

    def start(self) -> None:
        self.membership.start()

    async def stop(self) -> None:
        await self.membership.stop()
        await self._http.aclose()

    async def handle(self, message: Message) -> None:
        try:
            delivery = DeliveryMessage.model_validate(message.payload)
        except ValidationError as exc:
            raise Reject(f"not a notification delivery: {exc.error_count()} errors") from None
        async with self.db.connection() as conn:
            channel = await store.channel(conn, delivery.channel_id)
            cur = await conn.execute(
                "SELECT 1 FROM control.processed_messages WHERE consumer = %s AND message_id = %s",
                (CONSUMER, message.id),
            )
            done = await cur.fetchone() is not None
        if channel is None or done:
            return  # the channel was deleted since, or this delivery was made already
        if channel["kind"] == "in_app":
            async with self.db.transaction() as conn:
                if await first_time(conn, CONSUMER, message.id):
                    await store.insert_notification(conn, delivery.project_id, message.id,
                                                    delivery.event.model_dump(mode="json"))  # fmt: skip
            return
        secret = None
        if channel["secret"] is not None:
            secret = (await self.cipher()).decrypt(bytes(channel["secret"]))
        try:
            if channel["kind"] == "webhook":
                await self._webhook(message.id, channel["config"], secret, delivery.event)
            else:
                await self._email(channel["config"], secret, delivery.event)
        except (DeliveryFailed, Reject) as exc:
            if isinstance(exc, Reject) or self.retry.exhausted(message.attempt):  # the bus dead-letters it now
                await self._gave_up(delivery, channel, message.attempt, str(exc))
            raise
        async with self.db.transaction() as conn:
            await first_time(conn, CONSUMER, message.id)
        log.info("notification %s (%s) delivered to channel %s", message.id, delivery.event.event, channel["name"])

    async def _gave_up(self, delivery: DeliveryMessage, channel: dict[str, Any], attempts: int, error: str) -> None:
        """Tell the project's other channels that this one is failing (see ``builtin``)."""
        now = time.monotonic()
        if delivery.event.event == "bus.dead_letters" or now - self._told.get(channel["id"], -TELL_EVERY) < TELL_EVERY:
            return
        self._told[channel["id"]] = now
        async with self.db.transaction() as conn:
            await builtin.delivery_dead_lettered(conn, delivery.project_id, delivery.event.project, channel,
                                                 delivery.event.event, attempts, error)  # fmt: skip

    async def _webhook(self, message_id: str, config: dict[str, Any], secret: str | None, what: Event) -> None:
        body = webhook_body(message_id, what, config.get("format", "json"))
        headers = {"Content-Type": "application/json", "User-Agent": "agiflow-lab", "X-Agiflow-Delivery": message_id,
                   "X-Agiflow-Event": what.event}  # fmt: skip
        if secret is not None:
            headers["X-Agiflow-Signature"] = sign(secret, int(time.time()), body)
        try:
            r = await self._http.post(config["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            if (refused := blocked_host(exc)) is not None:  # never allowed there: retrying cannot help
                raise Reject(f"webhook not sent: {refused}") from None
            raise DeliveryFailed(f"webhook unreachable: {type(exc).__name__}") from None
        if not 200 <= r.status_code < 300:
            raise DeliveryFailed(f"webhook answered {r.status_code}")

    async def _email(self, config: dict[str, Any], password: str | None, what: Event) -> None:
        mail = EmailMessage()
        mail["Subject"] = f"[AGIFlow {what.project}] {what.title}"
        mail["From"] = config["sender"]
        mail["To"] = ", ".join(config["to"])
        mail.set_content(f"{what.title}\n\n{what.body}\n\nProject: {what.project}\nEvent: {what.event}\n"
                         f"At: {what.at.isoformat()}\n")  # fmt: skip
        try:
            # Checked again when sending (the name may resolve elsewhere now); smtplib then resolves it itself.
            await self.host_policy.resolve(config["host"], config["port"])
        except HostRefused as exc:
            raise Reject(f"e-mail not sent: refused to connect to {config['host']}: {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"e-mail not sent: cannot resolve {config['host']}: {exc}") from None
        try:
            await asyncio.to_thread(_send_mail, config, password, mail)  # smtplib blocks
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"e-mail not sent: {type(exc).__name__}: {exc}") from None
