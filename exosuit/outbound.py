"""Where Exosuit may send a request of its own (webhooks): public addresses only, checked on
the addresses the host resolves to at the moment of sending, so a name that points inside
the network is refused too. Loopback only where a setting allows it (tests, one machine).
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from exosuit.domain.webhooks import address_refusal


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


class DestinationRefused(Exception):
    """The URL may not be reached; the message says why."""


async def check_destination(url: str, *, allow_loopback: bool) -> None:
    """Raise DestinationRefused unless every address the URL's host resolves to is allowed."""
    refusal = url_refusal(url)
    if refusal:
        raise DestinationRefused(refusal)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"{host} does not resolve ({exc.strerror})") from None
    for *_, sockaddr in infos:
        refusal = address_refusal(str(sockaddr[0]), allow_loopback=allow_loopback)
        if refusal:
            raise DestinationRefused(f"{host}: {refusal}")
