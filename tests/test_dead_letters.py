"""Dead letters of the Postgres bus are visible to a server admin and can be re-queued through the API."""

from __future__ import annotations

import asyncio
import uuid

from agiflow_lab.bus.base import RetryPolicy
from agiflow_lab.bus.postgres import PostgresBus
from agiflow_lab.db.database import Database
from tests.support.api import Api


async def test_a_dead_letter_is_listed_and_requeued_through_the_api(api: Api, db_url: str) -> None:
    topic, group = f"dlq-{uuid.uuid4().hex[:6]}", "inspectors"
    db = Database(db_url, min_size=1, max_size=4)
    await db.open()
    bus = PostgresBus(db, retry=RetryPolicy(max_attempts=1))
    await bus.start()
    try:
        consumer = bus.consume([topic], group)
        await consumer.start()
        message_id = await bus.publish(topic, "k", {"order": 42})
        async with asyncio.timeout(10):
            delivery = await anext(consumer)
        await delivery.retry("the payment service said no")  # one attempt allowed: this is dead now

        r = await api.get("/bus/dead-letters", params={"topic": topic})
        assert r.status_code == 200, r.text
        [entry] = r.json()["items"]
        assert entry["message_id"] == message_id and entry["group"] == group
        assert entry["payload"] == {"order": 42} and "payment service" in entry["error"]

        assert (await api.get("/bus/dead-letters", user="mallory")).status_code == 403
        r = await api.post(f"/bus/dead-letters/{message_id}/requeue", {"group": "nobody"})
        assert r.status_code == 404
        r = await api.post(f"/bus/dead-letters/{message_id}/requeue", {"group": group})
        assert r.status_code == 204, r.text

        async with asyncio.timeout(10):
            again = await anext(consumer)
        assert again.message.id == message_id and again.message.payload == {"order": 42}
        await again.ack()
        assert (await api.get("/bus/dead-letters", params={"topic": topic})).json()["items"] == []
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT actor FROM control.audit_log WHERE action = 'bus.requeue' AND resource_id = %s", (message_id,)
            )
            assert [row["actor"] for row in await cur.fetchall()] == ["olivia"]
        await consumer.close()
    finally:
        await bus.close()
        await db.close()
