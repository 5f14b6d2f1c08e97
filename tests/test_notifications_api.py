"""The alerts and notifications API on the session's real server: 422s naming the field, viewers read and cannot
write, a webhook's secret shown once, in-app notifications with read state per user and a live socket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.api import Api
from tests.support.polling import until

RULE = {"name": "failures", "metric": "job_failures", "comparison": ">=", "threshold": 1, "window_seconds": 60}
HOOK = {"name": "hook", "kind": "webhook", "webhook": {"url": "https://example.invalid/hook"}}
MAIL = {"name": "mail", "kind": "email", "email": {"host": "smtp.example.invalid", "sender": "lab@example.org",
                                                    "to": ["ops@example.org"], "username": "u", "password": "pw-1"}}  # fmt: skip


def field_of(r: Any) -> str:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    return str(error["details"]["errors"][0]["field"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metric": "happiness"}, "metric"),
        ({"comparison": "=="}, "comparison"),
        ({"metric": "score_mean"}, "score_name"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"threshold": "high"}, "threshold"),
    ],
)
async def test_invalid_rules_are_422_naming_the_field(
    api: Api, project: str, change: dict[str, Any], field: str
) -> None:
    assert field_of(await api.post(f"/projects/{project}/alerts/rules", {**RULE, **change})) == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HOOK, "webhook": {"url": "ftp://example.org/x"}}, "webhook.url"),
        ({**HOOK, "webhook": {"url": "file:///etc/passwd"}}, "webhook.url"),
        ({**HOOK, "webhook": None}, "webhook"),
        ({**MAIL, "email": {**MAIL["email"], "to": ["not-an-address"]}}, "email.to"),
        ({**MAIL, "email": {**MAIL["email"], "sender": "lab at example"}}, "email.sender"),
        ({"name": "x", "kind": "pager"}, "kind"),
        # Cloud metadata is never a receiver, whatever allow_private_model_hosts says (the model connections' rule).
        ({**HOOK, "webhook": {"url": "http://169.254.169.254/latest/meta-data/"}}, "webhook.url"),
        ({**HOOK, "webhook": {"url": "http://metadata.google.internal/x"}}, "webhook.url"),
        ({**HOOK, "webhook": {"url": "http://[::ffff:169.254.169.254]/x"}}, "webhook.url"),
        ({**MAIL, "email": {**MAIL["email"], "host": "169.254.169.254"}}, "email.host"),
    ],
)
async def test_invalid_channels_are_422_naming_the_field(
    api: Api, project: str, body: dict[str, Any], field: str
) -> None:
    assert field_of(await api.post(f"/projects/{project}/notifications/channels", body)).startswith(field)


async def test_viewers_read_rules_and_channels_and_cannot_write_them(api: Api, project: str) -> None:
    assert (await api.post(f"/projects/{project}/alerts/rules", RULE)).status_code == 201
    viewer = await api.new_key(project, "viewer")
    for path, body in ((f"/projects/{project}/alerts/rules", {**RULE, "name": "other"}),
                       (f"/projects/{project}/notifications/channels", HOOK),
                       (f"/projects/{project}/alerts/silences", {"ends_at": "2030-01-01T00:00:00Z"})):  # fmt: skip
        r = await api.post(path, body, key=viewer)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    r = await api.get(f"/projects/{project}/alerts/rules", key=viewer)
    assert r.status_code == 200 and [x["name"] for x in r.json()["items"]] == ["failures"]
    assert r.json()["items"][0]["state"] == "ok"
    assert (await api.request("DELETE", f"/projects/{project}/alerts/rules/failures", key=viewer)).status_code == 403
    assert (await api.get(f"/projects/{project}/notifications/channels", key=viewer)).status_code == 200


async def test_a_webhook_secret_is_shown_once_and_an_smtp_password_never(api: Api, project: str) -> None:
    r = await api.post(f"/projects/{project}/notifications/channels", HOOK)
    assert r.status_code == 201, r.text
    assert r.json()["secret"].startswith("whsec_")
    r = await api.post(f"/projects/{project}/notifications/channels", MAIL)
    assert r.status_code == 201 and r.json()["secret"] is None, r.text
    assert r.json()["email"]["has_password"] is True
    listed = await api.get(f"/projects/{project}/notifications/channels")
    assert "whsec_" not in listed.text and "pw-1" not in listed.text and "secret" not in listed.json()["items"][0]
    assert (await api.post(f"/projects/{project}/notifications/channels", HOOK)).status_code == 409


async def test_a_channel_is_edited_disabled_and_its_secret_rotated(api: Api, project: str) -> None:
    base = f"/projects/{project}/notifications/channels"
    first = (await api.post(base, HOOK)).json()["secret"]
    r = await api.request("PATCH", f"{base}/hook", {"webhook": {"url": "https://example.invalid/v2", "format": "slack"},
                                                    "enabled": False})  # fmt: skip
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["webhook"] == {"url": "https://example.invalid/v2", "format": "slack"} and not edited["enabled"]
    assert edited["secret"] is None  # not rotated: the old secret still signs, and is not shown again
    rotated = (await api.request("PATCH", f"{base}/hook", {"rotate_secret": True})).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != first
    assert rotated["webhook"]["format"] == "slack" and "secret" not in (await api.get(f"{base}/hook")).json()

    await api.post(base, MAIL)
    r = await api.request("PATCH", f"{base}/mail", {"email": {**MAIL["email"], "host": "smtp2.example.invalid"}})
    assert r.status_code == 200 and r.json()["email"]["has_password"], r.text  # no password sent: kept
    r = await api.request("PATCH", f"{base}/mail", {"email": {**MAIL["email"], "password": None}})
    assert r.status_code == 200 and not r.json()["email"]["has_password"], r.text
    assert "pw-1" not in r.text

    for body, field in (({"email": MAIL["email"]}, "email"), ({"rotate_secret": True, "enabled": True}, "rotate_secret"),
                        ({"webhook": {"url": "gopher://x"}}, "webhook.url"), ({"name": "renamed"}, "name")):  # fmt: skip
        channel = "hook" if field != "rotate_secret" else "mail"
        assert field_of(await api.request("PATCH", f"{base}/{channel}", body)).startswith(field), body
    assert (await api.request("PATCH", f"{base}/nope", {"enabled": True})).status_code == 404
    viewer = await api.new_key(project, "viewer")
    assert (await api.request("PATCH", f"{base}/hook", {"enabled": True}, key=viewer)).status_code == 403
    r = await api.get(f"/projects/{project}/audit", params={"resource_type": "notification_channel"})
    updates = [e for e in r.json()["items"] if e["action"] == "notification_channel.update"]
    assert len(updates) == 4 and "pw-1" not in json.dumps(updates) and "whsec_" not in json.dumps(updates)


async def test_in_app_notifications_have_read_state_per_user_and_a_live_socket(api: Api, project: str) -> None:
    for user, role in (("vera", "viewer"), ("eddie", "editor")):
        assert (await api.put(f"/projects/{project}/members/{user}", {"role": role})).status_code == 200
    r = await api.post(f"/projects/{project}/notifications/channels", {"name": "inbox", "kind": "in_app"})
    assert r.status_code == 201, r.text
    url = api.server.api.replace("http", "ws", 1) + f"/projects/{project}/notifications/live"
    socket = await websocket_connect(HTTPRequest(url, headers=api.headers(user="vera")))
    try:
        r = await api.post(f"/projects/{project}/notifications/channels/inbox/test", user="eddie")
        assert r.status_code == 202, r.text
        woken = json.loads(await socket.read_message() or "{}")  # pushed once the notifier stored it
        assert woken["type"] == "notification"
    finally:
        socket.close()

    async def listed(user: str) -> list[dict[str, Any]]:
        r = await api.get(f"/projects/{project}/notifications", user=user)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    [note] = await until(lambda: listed("vera"), "the test notification in vera's list", timeout=30)
    assert note["event"] == "test" and note["read"] is False
    assert (await api.get(f"/projects/{project}/notifications/unread", user="vera")).json() == {"unread": 1}
    r = await api.post(f"/projects/{project}/notifications/{note['id']}/read", user="vera")  # a viewer may
    assert r.status_code == 200 and r.json() == {"marked": 1}, r.text
    assert [n["read"] for n in await listed("vera")] == [True]
    assert [n["read"] for n in await listed("eddie")] == [False]  # eddie has not read it
    r = await api.get(f"/projects/{project}/notifications", params={"unread": "true"}, user="vera")
    assert r.json()["items"] == []
    assert (await api.post(f"/projects/{project}/notifications/read", user="eddie")).json() == {"marked": 1}
    assert (await api.post(f"/projects/{project}/notifications/999999999/read", user="eddie")).status_code == 404
