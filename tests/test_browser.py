"""The JupyterLab extension in a real browser: Debian's Chromium driven by playwright-core.

The browser scenarios live in ``tests/browser/*.test.mjs``; this test starts a real JupyterLab with
AGIFlow (default identity provider: the server's token is the owner), seeds a prompt, and runs them.
A missing Chromium or missing node modules fail the test: CI must never pass without a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.servers import start_jupyter

REPO = Path(__file__).resolve().parents[1]


def test_prompt_browser_panel_in_jupyterlab(db_url: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is not installed (apt-get install chromium); scripts/test installs it")
    if not (REPO / "tests/browser/node_modules/playwright-core").is_dir():
        pytest.fail("tests/browser/node_modules is missing; run `npm ci` in tests/browser (scripts/test does)")
    server = start_jupyter(db_url, tmp_path, app="lab", named_users=False)
    try:
        name = f"browser-{uuid.uuid4().hex[:6]}"
        r = httpx.post(
            server.api + "/projects/default/prompts",
            json={"name": name, "template": "Summarise {{text}} in {{words}} words.", "labels": ["production"]},
            headers={"Authorization": f"token {server.token}"},
        )
        assert r.status_code == 201, r.text
        env = dict(os.environ, AGIFLOW_LAB_URL=server.url, AGIFLOW_LAB_TOKEN=server.token,
                   AGIFLOW_EXPECT_PROMPT=name, CHROMIUM_PATH=chromium)  # fmt: skip
        run = subprocess.run(
            ["node", "--test", "tests/browser/"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        report = run.stdout + run.stderr
        assert run.returncode == 0, report + "\n--- server log ---\n" + server.log_tail()
        assert "# fail 0" in report and "# skipped 0" in report and "# pass 3" in report, report
    finally:
        server.stop()
