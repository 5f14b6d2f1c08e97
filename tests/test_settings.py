"""Settings with a fixed set of values are refused when read, naming the setting and its variable, from the
environment and from Jupyter configuration alike (a typo used to surface only in every supervised worker's
log, as each failed to start)."""

from __future__ import annotations

import pytest

from agiflow_lab.config import Settings
from agiflow_lab_server.app import AgiflowLab


@pytest.mark.parametrize(("variable", "value"), [("AGIFLOW_KERNEL_START", "spawn"), ("AGIFLOW_KERNEL_SANDBOX", "yes")])
def test_an_unknown_choice_in_the_environment_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=f"env {variable}.*not '{value}'"):
        Settings().with_env()


def test_choices_are_read_as_their_readers_read_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGIFLOW_KERNEL_START", " Exec ")
    monkeypatch.setenv("AGIFLOW_KERNEL_SANDBOX", "OFF")
    settings = Settings().with_env()
    assert (settings.kernel_start, settings.kernel_sandbox) == (" Exec ", "OFF")


def test_an_unknown_choice_in_jupyter_configuration_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGIFLOW_KERNEL_START", raising=False)
    with pytest.raises(ValueError, match="kernel_start .*must be one of fork, exec, not 'vfork'"):
        AgiflowLab(kernel_start="vfork").settings_from_config()


def test_the_spare_worker_is_on_unless_turned_off_in_the_environment_or_jupyter_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGIFLOW_WORKER_STANDBY", raising=False)
    assert Settings().with_env().worker_standby and AgiflowLab().settings_from_config().worker_standby
    assert not AgiflowLab(worker_standby=False).settings_from_config().worker_standby
    monkeypatch.setenv("AGIFLOW_WORKER_STANDBY", "0")
    assert not Settings().with_env().worker_standby
    monkeypatch.setenv("AGIFLOW_WORKER_STANDBY", "maybe")
    with pytest.raises(ValueError, match="AGIFLOW_WORKER_STANDBY"):
        Settings().with_env()


def test_one_span_writer_of_its_own_unless_configured_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGIFLOW_SPAN_WRITERS", raising=False)
    assert Settings().with_env().span_writers == 1 and AgiflowLab().settings_from_config().span_writers == 1
    assert AgiflowLab(span_writers=0).settings_from_config().span_writers == 0
    monkeypatch.setenv("AGIFLOW_SPAN_WRITERS", "3")
    assert Settings().with_env().span_writers == 3
