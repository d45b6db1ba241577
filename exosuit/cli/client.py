"""`exosuit submit | wait | approve`: the HTTP API from any machine (a URL and a token).

Nothing here reads settings or a database: only `--url`/`EXOSUIT_URL` and
`--token`/`EXOSUIT_TOKEN`. Each command prints the task as JSON on stdout; a refusal
prints its problem (`403 /problems/four-eyes: ...`) on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx

from exosuit.domain.autonomy import AutonomyLevel

COMMANDS = ("submit", "wait", "approve")
DEFAULT_URL = "http://127.0.0.1:8000"
LONG_POLL_SECONDS = 60  # the server's most
EXIT_REFUSED, EXIT_TIMEOUT = 1, 2


def add_parsers(commands: Any) -> None:
    """The automation commands, added to `exosuit`'s subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("EXOSUIT_URL", DEFAULT_URL), help="env EXOSUIT_URL")
    common.add_argument("--token", default=os.environ.get("EXOSUIT_TOKEN"), help="env EXOSUIT_TOKEN")

    submit = commands.add_parser("submit", parents=[common], help="submit a task over the API")
    submit.add_argument("--title", required=True)
    submit.add_argument("--instructions", required=True, help="the text, or @FILE to read it from a file")
    submit.add_argument("--team", required=True)
    submit.add_argument(
        "--autonomy", choices=[level.value for level in AutonomyLevel], default=AutonomyLevel.SUPERVISED.value
    )
    submit.add_argument("--idempotency-key", help="the same key and body again give the same task")
    submit.add_argument("--id-only", action="store_true", help="print the task's id alone")

    wait = commands.add_parser("wait", parents=[common], help="wait for a task's gate or its end")
    wait.add_argument("task_id")
    wait.add_argument("--for", dest="wait_for", choices=["gate", "finished"], default="finished")
    wait.add_argument("--timeout", type=float, default=3600.0, help="seconds in all (exit 2 after)")

    approve = commands.add_parser("approve", parents=[common], help="approve a task's open gate")
    approve.add_argument("task_id")
    approve.add_argument("--gate", help="the gate's id (default: the gate open now)")
    approve.add_argument("--reason")


def main(argv: list[str]) -> int:
    """`exosuit submit|wait|approve ...` alone (so the command never imports the storage)."""
    parser = argparse.ArgumentParser(prog="exosuit")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


class Refused(Exception):
    """The API answered with a problem document."""


def run(args: argparse.Namespace) -> int:
    if not args.token:
        print("exosuit: a token is needed: --token or EXOSUIT_TOKEN", file=sys.stderr)
        return EXIT_REFUSED
    headers = {"Authorization": f"Bearer {args.token}"}
    api = f"{args.url.rstrip('/')}/api/v1"
    with httpx.Client(base_url=api, headers=headers, timeout=LONG_POLL_SECONDS + 15) as http:
        try:
            return _COMMANDS[args.command](http, args)
        except Refused as refused:
            print(f"exosuit: {refused}", file=sys.stderr)
            return EXIT_REFUSED
        except httpx.HTTPError as exc:
            print(f"exosuit: {args.url} did not answer: {exc}", file=sys.stderr)
            return EXIT_REFUSED


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        try:
            problem = response.json()
            raise Refused(f"{response.status_code} {problem.get('type')}: {problem.get('detail')}")
        except ValueError:
            raise Refused(f"{response.status_code} {response.text[:200]}") from None
    body: dict[str, Any] = response.json()
    return body


def _print(task: dict[str, Any]) -> None:
    print(json.dumps(task, indent=2))


def _submit(http: httpx.Client, args: argparse.Namespace) -> int:
    instructions = args.instructions
    if instructions.startswith("@"):
        with open(instructions[1:], encoding="utf-8") as file:
            instructions = file.read()
    body = {"title": args.title, "instructions": instructions, "team": args.team, "autonomy": args.autonomy}
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    task = _answer(http.post("/tasks", json=body, headers=headers))
    if args.id_only:
        print(task["id"])
    else:
        _print(task)
    return 0


def _wait(http: httpx.Client, args: argparse.Namespace) -> int:
    """Long-polls `GET /tasks/{id}/wait` (60 s a call) until ready or `--timeout` in all."""
    ends = time.monotonic() + args.timeout
    while True:
        left = max(0.0, min(LONG_POLL_SECONDS, ends - time.monotonic()))
        params: dict[str, str | float] = {"for": args.wait_for, "timeout": round(left, 3)}
        response = http.get(f"/tasks/{args.task_id}/wait", params=params)
        task = _answer(response)
        if response.headers.get("exosuit-wait") != "timeout":
            _print(task)
            return 0
        if time.monotonic() >= ends:
            _print(task)
            print(f"exosuit: timed out waiting for {args.wait_for}", file=sys.stderr)
            return EXIT_TIMEOUT


def _approve(http: httpx.Client, args: argparse.Namespace) -> int:
    gate_id = args.gate
    if gate_id is None:
        task = _answer(http.get(f"/tasks/{args.task_id}"))
        if task["open_gate"] is None:
            raise Refused(f"task {args.task_id} has no open gate (it is {task['status']})")
        gate_id = task["open_gate"]["id"]
    decision: dict[str, Any] = {"gate_id": gate_id, "action": "approve"}
    if args.reason:
        decision["reason"] = args.reason
    _print(_answer(http.post(f"/tasks/{args.task_id}/decisions", json=decision)))
    return 0


_COMMANDS = {"submit": _submit, "wait": _wait, "approve": _approve}
