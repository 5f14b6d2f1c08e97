#!/usr/bin/env python3
"""Fetch Apache Kafka from Maven Central and run a single-node KRaft broker for tests.

Standard library only. Library use::

    lib = fetch()               # idempotent; cache: $AGIFLOW_KAFKA_CACHE or ~/.cache/agiflow-lab/kafka
    with start() as broker:     # free ports, fresh workdir, waits until the PLAINTEXT port accepts
        print(broker.bootstrap) # "127.0.0.1:PORT"

CLI::

    python scripts/kafka_broker.py fetch   # prints the lib dir
    python scripts/kafka_broker.py run     # prints AGIFLOW_KAFKA_BOOTSTRAP=127.0.0.1:PORT, runs until Ctrl-C/SIGTERM
    python scripts/kafka_broker.py run --sasl-user agiflow:secret   # SASL/PLAIN only; prints AGIFLOW_KAFKA_*
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"  # Kafka 4.1.1's log4j2 version
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Kafka 4.1.1 depends on slf4j-api 1.7.36, so the binding is log4j-slf4j-impl (not log4j-slf4j2-impl).
ARTIFACTS = (
    ("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
    ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
)
MARKER = ".complete"


class KafkaBrokerError(RuntimeError):
    """Fetching, formatting or starting the broker failed."""


def default_cache_dir() -> Path:
    env = os.environ.get("AGIFLOW_KAFKA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "agiflow-lab" / "kafka"


def lib_dir(cache_dir: Path) -> Path:
    return cache_dir / f"kafka-{KAFKA_VERSION}" / "lib"


def _pom() -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in ARTIFACTS
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>agiflow-lab</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def fetch(cache_dir: Path | None = None) -> Path:
    """Download Kafka's runtime classpath with Maven into ``cache_dir`` (skipped if already complete)."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    lib = lib_dir(cache_dir)
    marker = lib.parent / MARKER
    if marker.is_file() and marker.read_text().strip() == _marker_text():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaBrokerError("Maven ('mvn') is not on PATH; it is needed to fetch Kafka from Maven Central")
    lib.parent.mkdir(parents=True, exist_ok=True)
    if lib.exists():
        shutil.rmtree(lib)
    pom = lib.parent / "pom.xml"
    pom.write_text(_pom())
    cmd = [
        mvn, "-q", "-B", "-f", str(pom),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={lib}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()[-4000:]
        raise KafkaBrokerError(f"Maven fetch of Kafka failed (exit {proc.returncode}):\n{output}")
    if not (lib / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar").is_file():
        raise KafkaBrokerError(f"Maven finished but the Kafka jar is missing from {lib}")
    marker.write_text(_marker_text())
    return lib


def _marker_text() -> str:
    return " ".join(":".join(a) for a in ARTIFACTS)


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={home}" if home else "PATH"
        raise KafkaBrokerError(f"no usable 'java' found via {where}; Kafka needs a JDK 17+")
    return java


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1 (all held open while choosing, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _server_properties(
    port: int, controller_port: int, log_dir: Path, partitions: int, users: dict[str, str] | None = None
) -> str:
    """``users``: SASL/PLAIN accounts; the client listener then refuses anonymous clients (the controller
    listener takes no client requests)."""
    client = "SASL_PLAINTEXT" if users else "PLAINTEXT"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"{client}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"{client}://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{client}:{client}",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # After a SIGKILL the controller refuses the restarted broker (DUPLICATE_BROKER_REGISTRATION)
        # until the old session expires: 9 s by default, shortened for kill/restart fault tests.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
    }
    if users:
        admin = uuid.uuid4().hex
        accounts = " ".join(f'user_{name}="{password}"' for name, password in {"admin": admin, **users}.items())
        props.update({
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config":
                f'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
                f'password="{admin}" {accounts};',
        })  # fmt: skip
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _log4j2_config(log_file: Path) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <File name="file" fileName="{log_file}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/>
    <Root level="WARN"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no broker log)"


@dataclass
class Broker:
    port: int
    controller_port: int
    workdir: Path
    lib: Path
    timeout: float = 90
    users: dict[str, str] = field(default_factory=dict, repr=False)  # SASL/PLAIN accounts; empty: anonymous
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def credentials(self) -> tuple[str, str] | None:
        """The first SASL account (name, password), or None for an anonymous broker."""
        return next(iter(self.users.items()), None)

    @property
    def env(self) -> dict[str, str]:
        """``AGIFLOW_KAFKA_*`` for AGIFlow processes that use this broker."""
        env = {"AGIFLOW_KAFKA_BOOTSTRAP": self.bootstrap}
        if self.credentials:
            env.update(
                AGIFLOW_KAFKA_USERNAME=self.credentials[0],
                AGIFLOW_KAFKA_PASSWORD=self.credentials[1],
                AGIFLOW_KAFKA_SASL_MECHANISM="PLAIN",
                AGIFLOW_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
            )
        return env

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    def _launch(self) -> None:
        cmd = [
            java_executable(), "-Xmx512m", "-cp", f"{self.lib}/*",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.xml'}",
            "kafka.Kafka", str(self.config),
        ]  # fmt: skip
        with open(self.workdir / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                cmd, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + self.timeout
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise KafkaBrokerError(
                    f"Kafka exited with code {self.process.returncode} before it was ready; log tail:\n"
                    f"{_tail(self.log_file)}\n{_tail(self.workdir / 'stdout.log')}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise KafkaBrokerError(
                    f"Kafka not ready on {self.bootstrap} after {self.timeout:.0f}s; log tail:\n{_tail(self.log_file)}"
                )
            time.sleep(0.2)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace: float = 20) -> None:
        """SIGTERM the broker's process group, SIGKILL after ``grace`` seconds. Idempotent."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def restart(self) -> None:
        """Start the same node again (same ports, same log dir) and wait until it is ready."""
        self.stop()
        self._launch()

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start(
    cache_dir: Path | None = None,
    workdir: Path | None = None,
    partitions: int = 4,
    timeout: float = 90,
    users: dict[str, str] | None = None,
) -> Broker:
    """Format a fresh single-node KRaft log dir in ``workdir`` and start a broker on free ports;
    with ``users`` it accepts only SASL/PLAIN clients with one of those accounts."""
    lib = fetch(cache_dir)
    java = java_executable()
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="kafka-broker-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port, controller_port = _free_ports(2)
    broker = Broker(port=port, controller_port=controller_port, workdir=workdir, lib=lib, timeout=timeout,
                    users=dict(users or {}))  # fmt: skip
    broker.config.write_text(
        _server_properties(broker.port, broker.controller_port, workdir / "kraft-logs", partitions, users)
    )
    (workdir / "log4j2.xml").write_text(_log4j2_config(broker.log_file))
    broker.log_file.touch()
    cluster_id = "-"
    while cluster_id.startswith("-"):  # StorageTool would read "-t -Ab..." as a missing id (as Kafka's Uuid avoids)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    fmt = subprocess.run(
        [java, "-cp", f"{lib}/*", f"-Dlog4j2.configurationFile={workdir / 'log4j2.xml'}",
         "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(broker.config)],
        capture_output=True, text=True,
    )  # fmt: skip
    if fmt.returncode != 0:
        output = fmt.stdout + fmt.stderr
        raise KafkaBrokerError(f"Kafka StorageTool format failed (exit {fmt.returncode}):\n{output}")
    broker._launch()
    return broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch", "run"])
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--sasl-user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="accept only SASL/PLAIN clients with this account (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch(args.cache_dir))
            return 0
        users = dict(u.split(":", 1) for u in args.sasl_user)
        broker = start(args.cache_dir, args.workdir, args.partitions, users=users)
    except KafkaBrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with broker:
        for name, value in broker.env.items():
            print(f"{name}={value}", flush=True)
        print(f"# workdir {broker.workdir}, log {broker.log_file}", file=sys.stderr, flush=True)
        try:
            while broker.process is not None and broker.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    code = broker.process.returncode if broker.process else 0
    return 0 if code in (0, -signal.SIGTERM, 143) else 1


if __name__ == "__main__":
    sys.exit(main())
