"""The one address policy for webhooks, notifications and the HTTP tool: IPv4 addresses
carried inside IPv6 ones are judged as what they carry; every resolved address is checked."""

from __future__ import annotations

import pytest

from exosuit import outbound
from exosuit.outbound import DestinationRefused, address_refusal, pin


@pytest.mark.parametrize(
    "address",
    [
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix, 10.0.0.1
        "::ffff:169.254.169.254",
    ],
)
def test_an_ipv6_address_carrying_an_inside_ipv4_address_is_refused(address: str) -> None:
    assert address_refusal(address, allow_loopback=True) is not None


def test_a_public_6to4_address_passes() -> None:
    assert address_refusal("2002:5db8:d822::1", allow_loopback=False) is None  # 93.184.216.34


async def test_a_name_with_one_inside_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def answers(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "169.254.169.254"]

    monkeypatch.setattr(outbound, "resolve", answers)
    with pytest.raises(DestinationRefused, match=r"169\.254\.169\.254"):
        await pin("https://hooks.example.com/x", allow_loopback=False)


async def test_the_pinned_url_names_the_checked_address_and_keeps_the_host_for_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def answers(host: str, port: int) -> list[str]:
        return ["2606:2800:220:1::1"]

    monkeypatch.setattr(outbound, "resolve", answers)
    pinned = await pin("https://Hooks.example.com/a?b=1", allow_loopback=False)
    assert pinned.url == "https://[2606:2800:220:1::1]:443/a?b=1"
    assert pinned.headers == {"Host": "Hooks.example.com"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}
