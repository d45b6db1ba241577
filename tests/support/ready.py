"""Waiting until a process of ours answers: its `/readyz` (database and Temporal reached)."""

from __future__ import annotations

import asyncio

import httpx


async def until_ready(base_url: str, within: float, what: str) -> None:
    """Until `GET {base_url}/readyz` answers 200 (a refused connection: not up yet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient(timeout=5) as http:
        while loop.time() < deadline:
            try:
                if (await http.get(f"{base_url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not get ready in {within:.0f} s")
