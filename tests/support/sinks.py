"""Local stand-ins for the world a tool step acts on: an HTTP sink and an SMTP server."""

from __future__ import annotations

import asyncio
import email
import socket
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class HttpSink:
    """Records every request; `/hooks/...` answer 200 after `delay` s; `/jump` redirects away."""

    requests: list[Received] = field(default_factory=list)
    delay: float = 0.0
    redirect_to: str = "http://127.0.0.1:9/elsewhere"
    reply: str | None = None  # a plain-text answer instead of the JSON one
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def anything(path: str, request: Request) -> Response:
            body = (await request.body()).decode()
            self.requests.append(Received(request.method, f"/{path}", dict(request.headers), body))
            self.arrived.set()
            if path.startswith("jump"):
                return RedirectResponse(self.redirect_to, status_code=302)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.reply is not None:
                return PlainTextResponse(self.reply)
            return JSONResponse({"ok": True, "got": len(body)}, status_code=201)

        return app


class _Collect:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        self._sink.messages.append((list(envelope.rcpt_tos), message))
        if self._sink.verbose:
            print(f"mail to {envelope.rcpt_tos}: {message['Subject']} {message['Message-ID']}", flush=True)
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    port: int = 0
    verbose: bool = False
    _controller: Controller | None = None

    def start(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


async def _serve_forever(port: int, smtp_port: int) -> None:
    """`python -m tests.support.sinks`: a sink for trying tool steps by hand (README)."""
    import uvicorn

    sink = HttpSink()
    smtp = SmtpSink(port=smtp_port, verbose=True)
    smtp._controller = Controller(_Collect(smtp), hostname="127.0.0.1", port=smtp_port)
    smtp._controller.start()
    app = sink.app()

    @app.middleware("http")
    async def show(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        last = sink.requests[-1] if sink.requests else None
        if last is not None:
            key = last.headers.get("idempotency-key")
            print(f"HTTP {last.method} {last.path} Idempotency-Key={key} body={last.body!r}", flush=True)
        return response

    print(f"HTTP sink on http://127.0.0.1:{port}/, SMTP on 127.0.0.1:{smtp_port}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    try:
        await server.serve()
    finally:
        smtp.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="A local HTTP sink and SMTP server.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--smtp-port", type=int, default=2525)
    options = parser.parse_args()
    asyncio.run(_serve_forever(options.port, options.smtp_port))
