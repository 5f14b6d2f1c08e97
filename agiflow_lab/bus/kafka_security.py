"""Kafka client authentication, kept apart from ``kafka.py`` so configuration can name it without
importing aiokafka."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KafkaSecurity:
    """How the platform's processes authenticate to Kafka. A broker that accepts anonymous clients lets
    any process that can reach it (a job's kernel included) read other projects' events and forge its
    own, so a deployment's brokers require SASL and only API servers and workers hold these."""

    username: str
    password: str = field(repr=False)
    mechanism: str = "PLAIN"  # or SCRAM-SHA-256 / SCRAM-SHA-512
    protocol: str = "SASL_PLAINTEXT"  # or SASL_SSL

    def __post_init__(self) -> None:
        if self.mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ValueError(f"unsupported Kafka SASL mechanism {self.mechanism!r}")
        if self.protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
            raise ValueError(f"unsupported Kafka security protocol {self.protocol!r}")

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "security_protocol": self.protocol, "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username, "sasl_plain_password": self.password,
        }  # fmt: skip
        if self.protocol == "SASL_SSL":
            import ssl

            options["ssl_context"] = ssl.create_default_context()
        return options
