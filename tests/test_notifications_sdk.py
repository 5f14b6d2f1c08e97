"""``client.alerts`` and ``client.notifications`` against the session's real server, with a project API key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from agiflow_lab.sdk import Client
from agiflow_lab.sdk.errors import ApiError
from tests.support.api import Api
from tests.support.polling import until
from tests.support.servers import JupyterServer


@pytest.fixture
async def editor_key(api: Api, project: str) -> str:
    return await api.new_key(project, "editor")


@pytest.fixture
def client(jupyter: JupyterServer, editor_key: str, project: str) -> Iterator[Client]:
    with Client(url=jupyter.url, api_key=editor_key, project=project, cache=False) as c:
        yield c


async def test_rules_silences_and_channels_through_the_sdk(client: Client) -> None:
    rule = client.alerts.create("slow", metric="latency_p95_ms", comparison=">", threshold=2000, for_seconds=60)
    assert (rule.state, rule.window_seconds, rule.for_seconds) == ("ok", 300, 60)
    assert client.alerts.update("slow", threshold=1500).threshold == 1500
    assert [r.name for r in client.alerts.list()] == ["slow"]
    silence = client.alerts.silence(rule="slow", ends_at=datetime.now(UTC) + timedelta(hours=1), reason="deploy")
    assert silence.active and silence.rule == "slow"
    assert client.alerts.get("slow").silenced_until == silence.ends_at
    client.alerts.unsilence(silence.id)
    assert client.alerts.silences() == [] and client.alerts.incidents() == []
    with pytest.raises(ApiError) as bad:
        client.alerts.create("x", metric="happiness", comparison=">", threshold=1)  # type: ignore[arg-type]
    assert bad.value.status == 422

    hook = client.notifications.create_webhook("ops", "https://hooks.example.invalid/x", format="slack")
    assert hook.secret is not None and hook.webhook is not None and hook.webhook.format == "slack"
    inbox = client.notifications.create_in_app("inbox")
    assert inbox.secret is None
    assert [c.name for c in client.notifications.channels()] == ["inbox", "ops"]
    rotated = client.notifications.update_channel("ops", rotate_secret=True, enabled=False)
    assert rotated.secret not in (None, hook.secret) and not rotated.enabled
    client.notifications.delete_channel("ops")
    client.notifications.test("inbox")
    await until(lambda: asyncio.to_thread(client.notifications.list), "the notifier to store it", timeout=30)
    [note] = client.notifications.list(unread=True)
    assert note.event == "test" and client.notifications.unread() == 1
    assert client.notifications.mark_read(note.id) == 1 and client.notifications.unread() == 0
    client.alerts.delete("slow")
    assert client.alerts.list() == []
