"""Pytest plugin: a session-scoped single-node Kafka broker (fixture ``kafka_broker``).

Load it from a conftest or test module with::

    pytest_plugins = ["tests.support.kafka"]

The broker comes from ``scripts/kafka_broker.py`` (Kafka fetched from Maven Central into
``$AGIFLOW_KAFKA_CACHE`` or ``~/.cache/agiflow-lab/kafka``). Missing Maven/Java or a failed
fetch/start FAILS the tests that use the fixture; it never skips them.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka_broker.py"


def _load_kafka_broker() -> ModuleType:
    name = "agiflow_scripts_kafka_broker"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _SCRIPT)
    assert spec is not None and spec.loader is not None, f"cannot load {_SCRIPT}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses needs the module registered while it executes
    spec.loader.exec_module(module)
    return module


kafka_broker_module = _load_kafka_broker()
Broker = kafka_broker_module.Broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A running Kafka broker for the whole session; ``.bootstrap`` is ``"127.0.0.1:PORT"``.

    It takes SASL/PLAIN clients only, as a deployment's brokers must (a job's kernel on the same host
    must not read or forge bus messages): ``.env`` has the ``AGIFLOW_KAFKA_*`` settings with the account,
    ``.credentials`` the account for a ``KafkaSecurity`` made in a test."""
    try:
        kafka_broker_module.fetch()
        broker = kafka_broker_module.start(
            workdir=tmp_path_factory.mktemp("kafka"), users={"agiflow": uuid.uuid4().hex}
        )
    except kafka_broker_module.KafkaBrokerError as e:
        error = str(e)
    else:
        error = ""
    if error:  # fail outside the except block so the report is not a chained traceback
        pytest.fail(f"Kafka broker unavailable: {error}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()
