"""Which addresses a model connection may reach: the server must not become a proxy into its own network.

A connection's ``base_url`` is chosen by a project owner, and the server calls it with the stored key.
Left open, that lets a project owner read cloud metadata (``169.254.169.254`` hands out instance
credentials) and probe ports on the server's network. Three classes of address:

- **refused always**: link-local (``169.254.0.0/16``, ``fe80::/10``), cloud metadata endpoints that are not
  link-local (AWS ``fd00:ec2::/32``, Alibaba ``100.100.100.200``, Azure's ``168.63.129.16``, Oracle's
  ``192.0.0.192``) and multicast/broadcast/reserved space, whatever the configuration;
- **private**: loopback, RFC 1918, CGNAT, unique-local IPv6, ``0.0.0.0``/``::`` (which reach the local
  host): allowed only with ``allow_private_model_hosts`` (on by default, so a laptop's Ollama on
  ``127.0.0.1`` works; a shared deployment turns it off);
- everything else (globally routable) is allowed.

An IPv6 address that embeds an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible, NAT64
``64:ff9b::/96``, 6to4) is judged by the IPv4 address it reaches. Host names are judged by every address
the operating system resolves them to (so ``0x7f000001``, ``2130706433`` and ``127.1`` are seen as the
``127.0.0.1`` they are); a name with one refused address is refused as a whole.

The check runs twice: when a connection is saved (a clear 422 for the owner) and on every TCP connection
the provider client opens (``transport.py``), after resolution and against the very address it then
connects to, so DNS that changes its answer between the two (rebinding) gains nothing. Notification
channels (webhooks, SMTP servers) are the same kind of address chosen by a project owner and follow the
same rule, checked when saved and again when delivering.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from agiflow_lab.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Verdict = Literal["public", "private", "refused"]

_REFUSED_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local: AWS, GCP, Azure, OpenStack, DigitalOcean and Oracle metadata
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure WireServer / host agent
        "192.0.0.192/32",  # Oracle Cloud (classic) metadata
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::/32",  # AWS IPv6 metadata (fd00:ec2::254) and its other instance services
        "ff00::/8",  # IPv6 multicast
    )
]
_NAT64 = [ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48")]
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Names that mean "the metadata service" without DNS (some clouds answer them from the host's resolver).
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
    "metadata.tencentyun.com", "metadata.platformequinix.com",
})  # fmt: skip
RESOLVE_TIMEOUT = 5.0
SAVE_RESOLVE_TIMEOUT = 3.0  # when a connection or channel is saved: a person waits for the answer


class HostRefused(Exception):
    """A connection's host is not one this server may call; the message names the rule, not the address."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one actually reaches, if it embeds one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64) or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> Verdict:
    if isinstance(address, ipaddress.IPv6Address):
        if (inner := embedded_ipv4(address)) is not None:
            return classify(inner)
    if any(address in net for net in _REFUSED_NETWORKS if net.version == address.version):
        return "refused"
    return "public" if address.is_global else "private"


def normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def canonical_address(name: str) -> IPAddress | None:
    """``name`` if it is an address written the canonical way (``127.0.0.1``, ``::1``), else None.

    Only canonical forms skip the resolver: ``127.1`` or ``0x7f000001`` are addresses to a socket but not to
    ``ipaddress``, and must still be read by ``getaddrinfo`` exactly as the connection would read them."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    return address if str(address) == name and "%" not in name else None


@dataclass(frozen=True)
class HostPolicy:
    """The rule for one deployment; ``allow_private`` comes from ``Settings.allow_private_model_hosts``."""

    allow_private: bool = True

    def check_address(self, address: IPAddress) -> None:
        verdict = classify(address)
        if verdict == "refused":
            raise HostRefused("it resolves to a link-local or cloud-metadata address, which is never allowed")
        if verdict == "private" and not self.allow_private:
            raise HostRefused(
                "it resolves to a loopback or private-network address, and this server does not allow those "
                "(allow_private_model_hosts is off)"
            )

    def check_name(self, host: str) -> None:
        """What can be said from the name alone, before any DNS."""
        name = normalise_host(host)
        if name in METADATA_NAMES:
            raise HostRefused("it names a cloud-metadata service, which is never allowed")
        if not self.allow_private and (name == "localhost" or name.endswith(".localhost")):
            raise HostRefused(
                "it names the local host, and this server does not allow loopback or private-network "
                "addresses (allow_private_model_hosts is off)"
            )

    async def resolve(self, host: str, port: int, *, timeout: float | None = RESOLVE_TIMEOUT) -> list[str]:  # noqa: ASYNC109
        """Every address ``host`` resolves to, each checked; raises ``HostRefused`` if any is not allowed,
        ``OSError`` if the name does not resolve. Resolution is the OS's (``getaddrinfo`` in the loop's
        executor), so numeric forms are read exactly as a socket would read them."""
        self.check_name(host)
        name = normalise_host(host)
        if (literal := canonical_address(name)) is not None:  # nothing to resolve: no trip to the executor
            self.check_address(literal)
            return [str(literal)]
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        addresses: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
            self.check_address(ipaddress.ip_address(text))
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise OSError(f"{name} resolves to no address")
        return addresses

    async def check_on_save(self, host: str, port: int, field: str) -> None:
        """Refuse, with a 422 naming ``field``, a host the policy forbids. A name that does not resolve now
        is let through: the laptop may be offline, or only the workers can resolve it; every connection
        opened later is checked anyway."""
        try:
            await self.resolve(host, port, timeout=SAVE_RESOLVE_TIMEOUT)
        except HostRefused as exc:
            raise ValidationFailed.of(field, f"{host} is not allowed: {exc}", "host_not_allowed") from None
        except (OSError, TimeoutError):
            pass

    async def check_url_on_save(self, url: str, field: str) -> None:
        parts = urllib.parse.urlsplit(url)
        await self.check_on_save(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), field)
