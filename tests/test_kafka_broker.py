"""The test Kafka broker works with aiokafka, including across a stop/restart."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from agiflow_lab.bus.kafka_security import KafkaSecurity

if TYPE_CHECKING:  # a runtime import would load the plugin before pytest can assert-rewrite it
    from tests.support.kafka import Broker

pytest_plugins = ["tests.support.kafka"]


async def _roundtrip(broker: Broker, n: int = 3) -> list[tuple[bytes, bytes]]:
    assert broker.credentials is not None
    bootstrap, options = broker.bootstrap, KafkaSecurity(*broker.credentials).client_options()
    topic = f"test-{uuid.uuid4().hex}"
    sent = [(f"key-{i}".encode(), f"value-{i}".encode()) for i in range(n)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **options)
    await producer.start()
    try:
        for key, value in sent:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"group-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        **options,
    )
    await consumer.start()
    received: list[tuple[bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            async for msg in consumer:
                assert msg.key is not None and msg.value is not None
                received.append((msg.key, msg.value))
                if len(received) == n:
                    break
    finally:
        await consumer.stop()
    # Keys may land on different partitions: compare as sets, order is only per partition.
    assert sorted(received) == sorted(sent)
    return received


def test_produce_and_consume(kafka_broker: Broker) -> None:
    asyncio.run(_roundtrip(kafka_broker))


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_restart(kafka_broker: Broker, how: str) -> None:
    bootstrap = kafka_broker.bootstrap
    getattr(kafka_broker, how)()
    assert kafka_broker.process is not None and kafka_broker.process.poll() is not None
    kafka_broker.stop()  # idempotent
    kafka_broker.restart()
    assert kafka_broker.bootstrap == bootstrap
    asyncio.run(_roundtrip(kafka_broker))


async def _anonymous_produce(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await producer.start()
        await producer.send_and_wait(f"test-{uuid.uuid4().hex}", b"forged")
    finally:
        await producer.stop()


def test_anonymous_clients_are_refused(kafka_broker: Broker) -> None:
    """A process without the account (a job's kernel) can neither read nor write the bus."""
    with pytest.raises(KafkaError):
        asyncio.run(_anonymous_produce(kafka_broker.bootstrap))
