"""Settings shared by the server extension, the workers and the CLI.

The server extension fills these from traitlets (``c.AgiflowLab.*``); the CLI and workers from the
environment. Environment variables win over file configuration everywhere so one deployment
manifest can steer every process the same way.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from jupyter_core.paths import jupyter_data_dir

if TYPE_CHECKING:  # the bus package imports this module
    from agiflow_lab.bus.kafka_security import KafkaSecurity
    from agiflow_lab.jobs.retention import Retention

ENV_PREFIX = "AGIFLOW_"
# Settings with a fixed set of values (compared trimmed and lower-cased, as their readers do).
CHOICES: dict[str, tuple[str, ...]] = {"kernel_start": ("fork", "exec"), "kernel_sandbox": ("auto", "on", "off")}


def default_data_dir() -> Path:
    return Path(jupyter_data_dir()) / "agiflow_lab"


def env_flag(name: str, value: str) -> bool:
    """A yes/no environment variable; anything unrecognised is an error rather than a silent default,
    because these flags open or close access."""
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    owner: str = field(default_factory=getpass.getuser)
    default_project: str = "default"
    db_pool_min: int = 2
    db_pool_max: int = 10
    key_cache_seconds: float = 5.0
    bus: str = "postgres"
    kafka_bootstrap: str | None = None
    # SASL credentials for Kafka: API servers and workers hold them, job kernels never do.
    kafka_username: str | None = None
    kafka_password: str | None = field(default=None, repr=False)
    kafka_sasl_mechanism: str = "PLAIN"
    kafka_security_protocol: str = "SASL_PLAINTEXT"
    kafka_partitions: int = 4
    kafka_session_timeout_ms: int = 10_000
    # How fast a dead worker's job is taken over when nobody saw it die (a supervised worker's death is seen).
    worker_stale_seconds: float = 15.0
    bus_lease_seconds: float = 30.0
    workers: int = 1
    # Of the processes a server supervises (when ``workers`` > 0), those that only load trace spans
    # (``worker --roles spans``); the job workers then run jobs only. 0: the job workers write spans too.
    span_writers: int = 1
    # A supervised worker's slot keeps a spare worker, started up to where its identity matters (imports,
    # kernels, database), which takes over at once when the worker dies instead of a start from nothing.
    worker_standby: bool = True
    worker_concurrency: int = 2
    max_running_jobs: int = 32
    max_running_jobs_per_project: int = 8
    # Untrusted input: request bodies (bytes; refused with 413 before they are read) and JSON nesting.
    max_body_bytes: int = 2 * 1024 * 1024
    max_import_bytes: int = 512 * 1024 * 1024  # streamed dataset imports
    max_json_depth: int = 64
    # Fernet key for provider credentials at rest; None: ``<data_dir>/secret.key`` (see ``secret_key_path``).
    secret_key_file: Path | None = None
    # Model connections may reach loopback/private addresses (a laptop's Ollama); a team deployment turns it off.
    allow_private_model_hosts: bool = True
    # Project API keys may add, change and remove members (off: only signed-in owners manage access).
    keys_manage_members: bool = False
    # This API process takes part in firing schedules (one replica at a time fires; off: never this one).
    scheduler: bool = True
    # This API process takes part in evaluating alert rules (one replica at a time), every this many seconds.
    alert_evaluator: bool = True
    alert_interval_seconds: float = 10.0
    # This API process takes part in upkeep (one replica at a time): the retention rules, every this many seconds.
    upkeep: bool = True
    upkeep_interval_seconds: float = 24 * 3600.0
    retention_job_events_days: int = 30
    retention_bus_messages_days: int = 7
    retention_idempotency_keys_days: int = 30
    trace_retention_default_days: int = 30  # projects without their own trace_retention_days
    # Kernels (user code) as unprivileged uids of their own: auto (when the worker is root), on, off.
    kernel_sandbox: str = "auto"
    kernel_uids: str | None = None  # e.g. "61000-61511"
    # How kernels start: fork (from a process that imported the kernel stack once) or exec (a fresh python).
    kernel_start: str = "fork"

    @property
    def kafka_security(self) -> KafkaSecurity | None:
        """None: the broker takes anonymous clients (acceptable only where nothing untrusted can reach it)."""
        if not self.kafka_username:
            return None
        from agiflow_lab.bus.kafka_security import KafkaSecurity

        return KafkaSecurity(self.kafka_username, self.kafka_password or "", self.kafka_sasl_mechanism,
                             self.kafka_security_protocol)  # fmt: skip

    @property
    def retention(self) -> Retention:
        from agiflow_lab.jobs.retention import Retention

        return Retention(
            job_events=timedelta(days=self.retention_job_events_days),
            bus_messages=timedelta(days=self.retention_bus_messages_days),
            idempotency_keys=timedelta(days=self.retention_idempotency_keys_days),
        )

    @property
    def secret_key_path(self) -> Path:
        """Where the key file lives. Derived late so a ``data_dir`` set by env or config moves it too."""
        return self.secret_key_file or self.data_dir / "secret.key"

    def with_env(self) -> Settings:
        """Apply ``AGIFLOW_*`` overrides on top of file configuration."""
        env = os.environ
        changes: dict[str, object] = {}
        if url := env.get(f"{ENV_PREFIX}DATABASE_URL"):
            changes["database_url"] = url
        if data_dir := env.get(f"{ENV_PREFIX}DATA_DIR"):
            changes["data_dir"] = Path(data_dir)
        if owner := env.get(f"{ENV_PREFIX}OWNER"):
            changes["owner"] = owner
        if bus := env.get(f"{ENV_PREFIX}BUS"):
            changes["bus"] = bus
        if bootstrap := env.get(f"{ENV_PREFIX}KAFKA_BOOTSTRAP"):
            changes["kafka_bootstrap"] = bootstrap
        for name in ("kafka_username", "kafka_password", "kafka_sasl_mechanism", "kafka_security_protocol"):
            if value := env.get(f"{ENV_PREFIX}{name.upper()}"):
                changes[name] = value
        if key_file := env.get(f"{ENV_PREFIX}SECRET_KEY_FILE"):
            changes["secret_key_file"] = Path(key_file)
        if sandbox := env.get(f"{ENV_PREFIX}KERNEL_SANDBOX"):
            changes["kernel_sandbox"] = sandbox
        if uids := env.get(f"{ENV_PREFIX}KERNEL_UIDS"):
            changes["kernel_uids"] = uids
        if start := env.get(f"{ENV_PREFIX}KERNEL_START"):
            changes["kernel_start"] = start
        for flag in ("allow_private_model_hosts", "keys_manage_members", "scheduler", "alert_evaluator", "upkeep",
                     "worker_standby"):  # fmt: skip
            if (value := env.get(f"{ENV_PREFIX}{flag.upper()}")) is not None:
                changes[flag] = env_flag(f"{ENV_PREFIX}{flag.upper()}", value)
        for seconds in (
            "worker_stale_seconds",
            "bus_lease_seconds",
            "alert_interval_seconds",
            "upkeep_interval_seconds",
        ):
            if (value := env.get(f"{ENV_PREFIX}{seconds.upper()}")) is not None:
                changes[seconds] = float(value)
        for name in ("workers", "span_writers", "worker_concurrency", "max_running_jobs", "max_running_jobs_per_project",
                     "kafka_partitions", "kafka_session_timeout_ms",
                     "max_body_bytes", "max_import_bytes", "max_json_depth", "retention_job_events_days",
                     "retention_bus_messages_days", "retention_idempotency_keys_days",
                     "trace_retention_default_days"):  # fmt: skip
            if (value := env.get(f"{ENV_PREFIX}{name.upper()}")) is not None:
                changes[name] = int(value)
        settings = replace(self, **changes)  # type: ignore[arg-type]
        settings.check_choices()
        return settings

    def check_choices(self) -> None:
        """Settings with a fixed set of values are refused where the server or a worker starts, naming the
        setting: a typo must not surface later, in the log of every supervised worker that then fails."""
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value.strip().lower() not in choices:
                raise ValueError(
                    f"{name} (env {ENV_PREFIX}{name.upper()}) must be one of {', '.join(choices)}, not {value!r}"
                )
