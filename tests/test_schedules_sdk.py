"""``client.schedules`` and ``agiflow-lab schedules ...`` against the session's real server (the CLI as a real
process, with a project API key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agiflow_lab.cli.main import main
from agiflow_lab.sdk import Client
from agiflow_lab.sdk.errors import ApiError
from tests.support.api import Api
from tests.support.servers import JupyterServer

SCRIPT = str(Path(sys.executable).with_name("agiflow-lab"))


@pytest.fixture
async def editor_key(api: Api, project: str) -> str:
    return await api.new_key(project, "editor")


@pytest.fixture
def client(jupyter: JupyterServer, editor_key: str, project: str) -> Iterator[Client]:
    with Client(url=jupyter.url, api_key=editor_key, project=project, cache=False) as c:
        yield c


def cli(jupyter: JupyterServer, key: str, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGIFLOW_URL": jupyter.url, "AGIFLOW_API_KEY": key}
    return subprocess.run([SCRIPT, "schedules", *args, "--project", project], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_the_sdk_manages_a_schedule_and_reads_its_firings(client: Client) -> None:
    made = client.schedules.create("hourly", interval_seconds=3600, job="builtin:hello", overlap="skip")
    assert made.job is not None and made.job.notebook == "builtin:hello" and made.overlap == "skip"
    assert len(made.next_fire_times) == 5
    assert [s.name for s in client.schedules.list()] == ["hourly"]
    edited = client.schedules.update("hourly", cron="30 6 * * 1-5", timezone="America/New_York",
                                     interval_seconds=None)  # fmt: skip
    assert edited.cron == "30 6 * * 1-5" and edited.interval_seconds is None
    assert all(t.weekday() < 5 for t in edited.next_fire_times)
    assert client.schedules.pause("hourly").paused
    assert not client.schedules.resume("hourly").paused

    firing = client.schedules.run_now("hourly")
    assert firing.manual and firing.outcome == "started" and firing.job_id
    assert [f.job_id for f in client.schedules.firings("hourly")] == [firing.job_id]
    last = client.schedules.get("hourly").last_firing
    assert last is not None and (last.id, last.job_id) == (firing.id, firing.job_id)

    with pytest.raises(ApiError) as bad:
        client.schedules.create("bad", cron="every day", job="builtin:hello")
    assert bad.value.status == 422
    client.schedules.delete("hourly")
    assert client.schedules.list() == []


def test_the_cli_creates_lists_runs_and_deletes_schedules(
    jupyter: JupyterServer, editor_key: str, project: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """In process (each console-script start costs two seconds of imports), but one: run-now as a real process."""
    monkeypatch.setenv("AGIFLOW_URL", jupyter.url)
    monkeypatch.setenv("AGIFLOW_API_KEY", editor_key)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["schedules", *args, "--project", project])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = run("create", "daily", "--cron", "0 7 * * *", "--timezone", "Asia/Tokyo",
                         "--notebook", "builtin:hello", "--param", "name=cli", "--param", "repeat=2")  # fmt: skip
    assert code == 0, err
    assert "created schedule 'daily': cron 0 7 * * * (Asia/Tokyo), builtin:hello" in out
    assert out.count("  next ") == 5 and all("22:00:00 UTC" in line for line in out.splitlines()[1:])
    code, out, _ = run("list")
    assert code == 0 and "daily" in out and "builtin:hello" in out and "on" in out

    started = cli(jupyter, editor_key, project, "run-now", "daily")
    assert started.returncode == 0, started.stderr
    job_id = started.stdout.strip()
    code, out, _ = run("firings", "daily", "--json")
    assert [(f["job_id"], f["manual"]) for f in json.loads(out)] == [(job_id, True)]
    with Client(url=jupyter.url, api_key=editor_key, project=project) as sdk:
        job = sdk.schedules.get("daily").job
    assert job is not None and job.parameters == {"name": "cli", "repeat": 2}

    assert run("pause", "daily")[0] == 0 and run("resume", "daily")[0] == 0
    code, _, err = run("create", "tz", "--cron", "0 7 * * *", "--timezone", "Atlantis/Capital", "--notebook",
                       "builtin:hello")  # fmt: skip
    assert code == 2 and "timezone" in err
    assert run("delete", "daily")[0] == 0
    assert run("firings", "daily")[0] == 4  # not found
