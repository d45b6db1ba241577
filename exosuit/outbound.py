"""Where Exosuit may send a request of its own: one address policy for webhooks,
notifications and the HTTP tool.

The host is resolved once, every address it resolves to is checked, and the request is
sent to the address that was checked (pinned), so a name that answers a public address to
the check and a private one to the connection (DNS rebinding) gains nothing. IPv4 addresses
carried inside IPv6 ones (mapped, 6to4, Teredo, NAT64) are checked as what they carry.
Loopback only where a setting allows it (tests, one machine).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def url_refusal(url: str) -> str | None:
    """Why a URL cannot be a destination at all (scheme, host), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "the URL must be http:// or https://"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "the URL must not carry credentials"
    return None


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for (a relay or translator reaches them)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    if any(ip in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_refusal(address: str, *, allow_loopback: bool, allow_private: bool = False) -> str | None:
    """Why an IP address may not be reached (private networks, metadata services...), or None.
    `allow_private` (the HTTP tool's `allow_private_network`) lets every address through."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if allow_private:
        return None
    for carried in embedded_ipv4(ip):
        refusal = address_refusal(str(carried), allow_loopback=False)  # relayed: never "this machine"
        if refusal:
            return f"{ip} carries {refusal}"
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return f"{ip} is not a public address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


class DestinationRefused(Exception):
    """The URL may not be reached; the message says why."""


class Unresolved(DestinationRefused):
    """The host has no address now (it may later)."""


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for host (the seam tests replace)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in infos]


resolve = system_resolve


@dataclass(frozen=True)
class Pinned:
    """A checked destination: `url` names the checked address instead of the host; send it
    with `headers` (the original Host) and `extensions` (TLS checks the original name)."""

    url: str
    address: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


async def pin(url: str, *, allow_loopback: bool, allow_private: bool = False) -> Pinned:
    """Resolve the URL's host once; DestinationRefused unless every address is allowed; the
    URL pinned to the first one."""
    refusal = url_refusal(url)
    if refusal:
        raise DestinationRefused(refusal)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise Unresolved(f"{host} does not resolve ({exc})") from None
    if not addresses:
        raise Unresolved(f"{host} does not resolve")
    for address in addresses:
        refusal = address_refusal(address, allow_loopback=allow_loopback, allow_private=allow_private)
        if refusal:
            raise DestinationRefused(f"{host}: {refusal}")
    address = addresses[0].split("%")[0]
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path, parts.query, ""))
    host_header = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Pinned(pinned, address, {"Host": host_header}, extensions)


async def check_destination(url: str, *, allow_loopback: bool) -> Pinned:
    """Raise DestinationRefused unless every address the URL's host resolves to is allowed."""
    return await pin(url, allow_loopback=allow_loopback)
