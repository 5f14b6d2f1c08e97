"""The ``agiflow-lab`` console script, run as a real process against the session's Jupyter server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agiflow_lab.db.migrate import available_migrations
from agiflow_lab.errors import NotFound
from agiflow_lab.sdk import Client
from tests.support.api import Api
from tests.support.servers import JupyterServer, create_database

SCRIPT = str(Path(sys.executable).with_name("agiflow-lab"))

GREET_YAML = """\
name: greet
description: Greets a customer
tags: [support]
labels: [production]
config:
  model: gpt-4o
  temperature: 0.2
template: |
  Hello {{name}},
  welcome to {{place}}!
"""
SUPPORT_JSON = {
    "name": "support",
    "labels": ["production", "staging"],
    "template": [
        {"role": "system", "content": "You help {{company}} customers."},
        {"role": "user", "content": "{{question}}"},
    ],
}


def write(folder: Path, files: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        (folder / name).write_text(text)
    return folder


class Cli:
    def __init__(self, server: JupyterServer, project: str, key: str) -> None:
        self.server, self.project, self.key = server, project, key

    def __call__(self, *args: str | Path, key: str | None = None, env: dict[str, str] | None = None,
                 project: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
        environ = {**os.environ, "AGIFLOW_URL": self.server.url, "AGIFLOW_API_KEY": key or self.key, **(env or {})}
        argv = [SCRIPT, *map(str, args)]
        if project and len(args) >= 2 and args[0] in ("prompts", "keys"):
            argv += ["--project", self.project]
        return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=120)


@pytest.fixture
async def owner_key(api: Api, project: str) -> str:
    return await api.new_key(project, "owner")


@pytest.fixture
def cli(jupyter: JupyterServer, project: str, owner_key: str) -> Cli:
    return Cli(jupyter, project, owner_key)


@pytest.fixture
def sdk(jupyter: JupyterServer, project: str, owner_key: str) -> Client:
    return Client(url=jupyter.url, api_key=owner_key, project=project, cache=False)


def test_push_creates_prompts_from_yaml_and_json(cli: Cli, sdk: Client, tmp_path: Path) -> None:
    src = write(tmp_path / "src", {"greet.yaml": GREET_YAML, "support.json": SUPPORT_JSON, "README.md": "ignored"})
    r = cli("prompts", "push", src)
    assert r.returncode == 0, r.stderr
    assert "created          greet v1 [production]" in r.stdout
    assert "created          support v1 [production, staging]" in r.stdout

    greet = sdk.prompts.get("greet", label="production")
    assert greet.render(name="Ann", place="Oslo") == "Hello Ann,\nwelcome to Oslo!\n"
    assert greet.config == {"model": "gpt-4o", "temperature": 0.2}
    assert greet.commit_message == "agiflow-lab push greet.yaml"
    assert sdk.prompts.summary("greet").tags == ["support"]
    assert sdk.prompts.get("support", label="staging").type == "chat"


def test_pull_then_push_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    src = write(tmp_path / "src", {"greet.yaml": GREET_YAML, "support.json": SUPPORT_JSON})
    assert cli("prompts", "push", src).returncode == 0

    pulled = tmp_path / "pulled"
    r = cli("prompts", "pull", pulled)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in pulled.iterdir()) == ["greet.yaml", "support.yaml"]
    assert (pulled / "greet.yaml").read_text() == textwrap.dedent("""\
        name: greet
        type: text
        description: Greets a customer
        tags:
        - support
        labels:
        - production
        config:
          model: gpt-4o
          temperature: 0.2
        template: |
          Hello {{name}},
          welcome to {{place}}!
        """)

    for folder in (pulled, src):
        r = cli("prompts", "push", folder)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("unchanged        ") == 2, r.stdout
        assert "2 prompt(s): 2 unchanged" in r.stdout

    before = {p.name: p.read_text() for p in pulled.iterdir()}
    assert cli("prompts", "pull", pulled).returncode == 0
    assert {p.name: p.read_text() for p in pulled.iterdir()} == before  # byte-identical re-pull

    as_json = tmp_path / "json"
    assert cli("prompts", "pull", as_json, "--format", "json").returncode == 0
    assert json.loads((as_json / "support.json").read_text())["labels"] == ["production", "staging"]
    assert "unchanged" in cli("prompts", "push", as_json).stdout


def test_a_changed_template_makes_exactly_one_new_version(cli: Cli, sdk: Client, tmp_path: Path) -> None:
    src = write(tmp_path / "src", {"greet.yaml": GREET_YAML})
    assert cli("prompts", "push", src).returncode == 0
    write(src, {"greet.yaml": GREET_YAML.replace("Hello", "Hi")})

    r = cli("prompts", "push", src, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would update     greet v1 → a new version [production]" in r.stdout
    assert sdk.prompts.summary("greet").latest_version == 1

    r = cli("prompts", "push", src)
    assert "updated          greet v1 → v2 [production]" in r.stdout, r.stdout
    assert sdk.prompts.get("greet").version == 2
    assert "unchanged" in cli("prompts", "push", src).stdout
    assert sdk.prompts.summary("greet").latest_version == 2


def test_label_option_compares_with_and_moves_that_label(cli: Cli, sdk: Client, tmp_path: Path) -> None:
    src = write(tmp_path / "src", {"greet.yaml": GREET_YAML})
    assert cli("prompts", "push", src).returncode == 0
    r = cli("prompts", "push", src, "--label", "canary")
    assert "relabelled       greet v1 [canary]" in r.stdout, r.stdout
    assert sdk.prompts.get("greet", label="canary").version == 1

    sdk.prompts.add_version("greet", "Newer {{name}}")  # someone else's newer version, unlabelled
    pulled = tmp_path / "pulled"
    assert cli("prompts", "pull", pulled, "--label", "production").returncode == 0
    assert "welcome to" in (pulled / "greet.yaml").read_text()
    assert "unchanged" in cli("prompts", "push", pulled, "--label", "production").stdout


def test_bad_files_are_all_reported_and_nothing_is_pushed(cli: Cli, sdk: Client, tmp_path: Path) -> None:
    src = write(
        tmp_path / "src",
        {
            "good.yaml": "template: fine\n",
            "broken.yaml": "template: [unclosed\n",
            "role.json": {"template": [{"role": "robot", "content": "x"}]},
            "extra.yml": "template: x\ncolour: blue\n",
            "latest.yaml": "template: x\nlabels: [latest]\n",
            "list.json": ["not", "a", "mapping"],
            "mismatch.yaml": "type: chat\ntemplate: just text\n",
        },
    )
    r = cli("prompts", "push", src)
    assert r.returncode == 2, r.stdout + r.stderr
    for name, reason in [
        ("broken.yaml", "not valid YAML"),
        ("role.json", "template.0.role: Input should be 'system'"),
        ("extra.yml", "colour: Extra inputs are not permitted"),
        ("latest.yaml", "'latest' is automatic"),
        ("list.json", "expected a mapping"),
        ("mismatch.yaml", "a chat prompt's template must be a list of messages"),
    ]:
        assert f"{src / name}: " in r.stderr and reason in r.stderr, (name, r.stderr)
    assert "nothing was pushed: 6 bad file(s)" in r.stderr
    assert "good.yaml" not in r.stderr
    with pytest.raises(NotFound):
        sdk.prompts.summary("good")


def test_a_type_change_is_refused_before_anything_is_written(cli: Cli, sdk: Client, tmp_path: Path) -> None:
    sdk.prompts.create("greet", "Hello")
    src = write(tmp_path / "src", {"a-new.yaml": "template: new\n", "greet.json": SUPPORT_JSON | {"name": "greet"}})
    r = cli("prompts", "push", src)
    assert r.returncode == 2
    assert "greet.json: prompt 'greet' is a text prompt on the server" in r.stderr
    with pytest.raises(NotFound):
        sdk.prompts.summary("a-new")


async def test_viewer_key_cannot_push(cli: Cli, api: Api, project: str, tmp_path: Path) -> None:
    viewer_key = await api.new_key(project, "viewer")
    src = write(tmp_path / "src", {"greet.yaml": GREET_YAML})
    r = cli("prompts", "push", src, key=viewer_key)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "forbidden" in r.stderr
    assert cli("prompts", "pull", tmp_path / "out", key=viewer_key).returncode == 0  # reading is allowed


def test_keys_create_list_revoke(cli: Cli, jupyter: JupyterServer, project: str) -> None:
    r = cli("keys", "create", "--name", "ci", "--role", "editor", "--json")
    assert r.returncode == 0, r.stderr
    created = json.loads(r.stdout)
    assert created["secret"].startswith("agf_") and created["role"] == "editor"

    r = cli("keys", "create", "--name", "notebook", "--role", "viewer")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("agf_") and "\n" not in secret  # only the key on stdout
    assert "not shown again" in r.stderr

    r = cli("keys", "list")
    assert r.returncode == 0 and created["id"] in r.stdout and "notebook" in r.stdout
    assert created["secret"] not in r.stdout and secret not in r.stdout

    r = cli("keys", "revoke", created["id"])
    assert r.returncode == 0 and f"revoked key {created['id']}" in r.stdout
    listed = {k["id"]: k for k in json.loads(cli("keys", "list", "--json").stdout)}
    assert listed[created["id"]]["revoked_at"] is not None
    assert cli("keys", "list", key=created["secret"]).returncode == 3  # a revoked key is refused
    assert cli("keys", "revoke", secret).returncode == 0  # the whole key works as an id too

    r = cli("keys", "revoke", "0123456789ab")
    assert r.returncode == 4 and "0123456789ab" in r.stderr


def test_exit_codes_for_scripts(cli: Cli, tmp_path: Path) -> None:
    assert cli("prompts", "push").returncode == 2  # argparse: missing DIR
    r = cli("prompts", "push", tmp_path / "missing")
    assert r.returncode == 2 and "not a directory" in r.stderr
    r = cli("prompts", "push", write(tmp_path / "empty", {"notes.txt": "x"}))
    assert r.returncode == 2 and "no prompt files" in r.stderr
    assert cli("keys", "list", key="agf_000000000000_wrong").returncode == 3
    r = cli("keys", "list", env={"AGIFLOW_URL": "http://127.0.0.1:9/"})
    assert r.returncode == 1 and "cannot reach AGIFlow" in r.stderr
    no_config = {"AGIFLOW_URL": "", "AGIFLOW_API_KEY": "", "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    r = cli("keys", "list", env=no_config)
    assert r.returncode == 2 and "AGIFLOW_URL" in r.stderr


def test_db_upgrade_migrates_a_fresh_database(cli: Cli, pg_server: str) -> None:
    url = create_database(pg_server)
    r = cli("db", "upgrade", "--database-url", url)
    assert r.returncode == 0, r.stderr
    every = [m.version for m in available_migrations()]
    assert r.stdout.startswith(f"applied migrations {', '.join(map(str, every))} (--database-url)")
    with psycopg.connect(url) as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM control.schema_migrations ORDER BY 1")] == every
    r = cli("db", "upgrade", env={"AGIFLOW_DATABASE_URL": url})
    assert r.returncode == 0 and "database is up to date (AGIFLOW_DATABASE_URL)" in r.stdout

    r = cli("db", "upgrade", "--database-url", url.replace(url.rsplit("/", 1)[1].split("?")[0], "no_such_db"))
    assert r.returncode == 1 and "database upgrade failed" in r.stderr

    r = cli("db", "purge-traces", "--database-url", url, "--default-days", "7")
    assert r.returncode == 0 and r.stdout.startswith("dropped 0 day partition(s), deleted 0 span(s)"), r.stderr
    assert cli("db", "purge-traces", "--database-url", url, "--default-days", "0").returncode == 2


def test_a_worker_removes_the_work_dir_it_made_when_it_stops(cli: Cli, pg_server: str, tmp_path: Path) -> None:
    """Without ``--work-dir`` a worker makes its scratch dir under TMPDIR; a supervised worker is started
    (and restarted) many times in a server's life, so it must not leave one behind each time it stops."""
    url = create_database(pg_server)
    assert cli("db", "upgrade", "--database-url", url).returncode == 0
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log = tmp_path / "worker.log"
    env = {**os.environ, "TMPDIR": str(scratch), "AGIFLOW_DATA_DIR": str(tmp_path / "data"),
           "AGIFLOW_SECRET_KEY_FILE": str(tmp_path / "secret.key")}  # fmt: skip
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [SCRIPT, "worker", "--roles", "spans", "--bus", "postgres", "--database-url", url],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        until_ready = time.monotonic() + 60
        while " ready: " not in log.read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < until_ready, log.read_text(errors="replace")
            time.sleep(0.1)
        assert [p.name.startswith("agiflow-worker-") for p in scratch.iterdir()] == [True]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text(errors="replace")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert list(scratch.iterdir()) == [], log.read_text(errors="replace")
