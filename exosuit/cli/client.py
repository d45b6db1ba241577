"""The commands that drive a server over its HTTP API, from any machine (docs/cli.md).

They need a URL and a token (flags, `EXOSUIT_URL`/`EXOSUIT_TOKEN` or the config file:
connection.py) and nothing else: no settings, no data dir, no database. Each prints for a
person, or the API's JSON with `--output json`, and exits with a code per kind of outcome
(exit_codes.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from exosuit.cli import render
from exosuit.cli.api import LONG_POLL_SECONDS, Api, ApiError
from exosuit.cli.arguments import json_object, param, text_or_file
from exosuit.cli.connection import NotConfigured, connection
from exosuit.cli.exit_codes import ExitCode
from exosuit.cli.version import add_version
from exosuit.domain.autonomy import AutonomyLevel
from exosuit.domain.task import TaskStatus

COMMANDS = (
    "list", "get", "submit", "wait", "approve", "edit", "reject", "answer", "cancel", "resume", "templates",
    "webhooks",
)  # fmt: skip


def add_parsers(commands: Any) -> None:
    """The HTTP commands, added to `exosuit`'s subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the server (else EXOSUIT_URL, the config file, or 127.0.0.1:8000)")
    common.add_argument("--token", help="an API token (else EXOSUIT_TOKEN or the config file)")
    common.add_argument("-o", "--output", choices=["text", "json"], default="text", help="json: the API's")

    listing = commands.add_parser("list", parents=[common], help="the tasks of your teams, newest first")
    listing.add_argument("--status", choices=[s.value for s in TaskStatus])
    listing.add_argument("--team")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor", help="the next_cursor a previous page gave")

    get = commands.add_parser("get", parents=[common], help="one task: status, gate, steps, result")
    get.add_argument("task_id")

    submit = commands.add_parser("submit", parents=[common], help="submit a task")
    submit.add_argument("--title", required=True)
    submit.add_argument("--instructions", required=True, type=text_or_file, help="the text, or @FILE")
    submit.add_argument("--team", required=True)
    submit.add_argument(
        "--autonomy", choices=[level.value for level in AutonomyLevel], default=AutonomyLevel.SUPERVISED.value
    )
    submit.add_argument("--budget-usd", type=float)
    submit.add_argument("--idempotency-key", help="the same key and body again give the same task")
    submit.add_argument("--id-only", action="store_true", help="print the task's id alone")

    wait = commands.add_parser("wait", parents=[common], help="wait for a task's gate or its end")
    wait.add_argument("task_id")
    wait.add_argument("--for", dest="wait_for", choices=["gate", "finished"], default="finished")
    wait.add_argument("--timeout", type=float, default=3600.0, help="seconds in all (then exit 5)")

    decisions = argparse.ArgumentParser(add_help=False, parents=[common])
    decisions.add_argument("task_id")
    decisions.add_argument("--gate", help="the gate's id (default: the gate open now)")
    approve = commands.add_parser("approve", parents=[decisions], help="approve the open gate")
    approve.add_argument("--reason")
    edit = commands.add_parser("edit", parents=[decisions], help="approve the open gate with changes")
    change = edit.add_mutually_exclusive_group(required=True)
    change.add_argument("--instructions", type=text_or_file, help="a step gate's new instructions (or @FILE)")
    change.add_argument("--args", type=json_object, help="a tool step's new arguments: JSON (or @FILE)")
    change.add_argument("--output-text", type=text_or_file, help="an output gate's new output (or @FILE)")
    change.add_argument("--changes", type=json_object, help='any gate: {"steps": [...]}, ... (or @FILE)')
    edit.add_argument("--reason")
    reject = commands.add_parser("reject", parents=[decisions], help="reject the open gate")
    reject.add_argument("--reason", required=True)
    reject.add_argument("--on-reject", choices=["revise", "skip", "stop"], default="revise")
    answer = commands.add_parser("answer", parents=[decisions], help="answer the open question")
    answer.add_argument("--answer", required=True, help="the answer (one of the question's choices, if any)")

    for name, what in (
        ("cancel", "end a task (at its next gate or step)"),
        ("resume", "run a failed task again"),
    ):
        commands.add_parser(name, parents=[common], help=what).add_argument("task_id")

    templates = commands.add_parser("templates", help="task templates").add_subparsers(
        dest="action", required=True
    )
    templates.add_parser("list", parents=[common], help="the templates of your teams")
    run = templates.add_parser("run", parents=[common], help="a task from a template")
    run.add_argument("name")
    run.add_argument("--param", type=param, action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--idempotency-key")
    run.add_argument("--id-only", action="store_true")

    webhooks = commands.add_parser("webhooks", help="webhook subscriptions").add_subparsers(
        dest="action", required=True
    )
    webhooks.add_parser("list", parents=[common], help="the subscriptions of the teams you approve for")


def main(argv: list[str]) -> int:
    """The HTTP commands alone (so they never import the storage or read the settings)."""
    parser = argparse.ArgumentParser(prog="exosuit")
    add_version(parser)
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    try:
        server = connection(args.url, args.token)
    except NotConfigured as exc:
        print(f"exosuit: {exc}", file=sys.stderr)
        return ExitCode.NOT_SET_UP
    if not server.token:
        print("exosuit: a token is needed: --token, EXOSUIT_TOKEN or the config file", file=sys.stderr)
        return ExitCode.NOT_SET_UP
    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    with Api(server.url, server.token) as api:
        try:
            return _COMMANDS[command](api, args)
        except ApiError as error:
            print("\n".join(error.lines()), file=sys.stderr)
            if args.output == "json" and error.document is not None:  # a script parses what refused it
                print(json.dumps(error.document, indent=2))
            return error.code


def _show(args: argparse.Namespace, answer: Any, text: Callable[[Any], str]) -> None:
    print(json.dumps(answer, indent=2) if args.output == "json" else text(answer))


def _task_created(args: argparse.Namespace, task: dict[str, Any]) -> int:
    if args.id_only:
        print(task["id"])
    else:
        _show(args, task, render.task)
    return ExitCode.OK


def _list(api: Api, args: argparse.Namespace) -> int:
    params = {"status": args.status, "team": args.team, "limit": args.limit, "cursor": args.cursor}
    page = api.json("GET", "/tasks", params={k: v for k, v in params.items() if v is not None})
    _show(args, page, lambda p: render.tasks(p["items"]))
    if args.output == "text" and page.get("next_cursor"):
        print(f"more: exosuit list --cursor {page['next_cursor']}", file=sys.stderr)
    return ExitCode.OK


def _get(api: Api, args: argparse.Namespace) -> int:
    _show(args, api.json("GET", f"/tasks/{args.task_id}"), render.task)
    return ExitCode.OK


def _submit(api: Api, args: argparse.Namespace) -> int:
    body = {
        "title": args.title,
        "instructions": args.instructions,
        "team": args.team,
        "autonomy": args.autonomy,
    }
    if args.budget_usd is not None:
        body["budget_usd"] = args.budget_usd
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    return _task_created(args, api.json("POST", "/tasks", body=body, headers=headers))


def _wait(api: Api, args: argparse.Namespace) -> int:
    """Long-polls `GET /tasks/{id}/wait` (60 s a call) until ready or `--timeout` in all."""
    ends = time.monotonic() + args.timeout
    while True:
        left = max(0.0, min(LONG_POLL_SECONDS, ends - time.monotonic()))
        params = {"for": args.wait_for, "timeout": round(left, 3)}
        response = api.call("GET", f"/tasks/{args.task_id}/wait", params=params)
        if response.headers.get("exosuit-wait") != "timeout" or time.monotonic() >= ends:
            break
    _show(args, response.json(), render.task)
    if response.headers.get("exosuit-wait") == "timeout":
        print(f"exosuit: timed out waiting for {args.wait_for}", file=sys.stderr)
        return ExitCode.TIMED_OUT
    return ExitCode.OK


def _decide(api: Api, args: argparse.Namespace, decision: dict[str, Any]) -> int:
    gate_id = args.gate
    if gate_id is None:
        task = api.json("GET", f"/tasks/{args.task_id}")
        if task["open_gate"] is None:
            raise ApiError(ExitCode.REFUSED, f"task {args.task_id} has no open gate (it is {task['status']})")
        gate_id = task["open_gate"]["id"]
    if getattr(args, "reason", None):
        decision["reason"] = args.reason
    answer = api.json("POST", f"/tasks/{args.task_id}/decisions", body={"gate_id": gate_id, **decision})
    _show(args, answer, render.task)
    return ExitCode.OK


def _edit(api: Api, args: argparse.Namespace) -> int:
    if args.changes is not None:
        changes = args.changes
    elif args.instructions is not None:
        changes = {"instructions": args.instructions}
    elif args.args is not None:
        changes = {"args": args.args}
    else:
        changes = {"output": args.output_text}
    return _decide(api, args, {"action": "edit", "changes": changes})


def _settle(api: Api, args: argparse.Namespace) -> int:
    """cancel or resume: 202, the workflow does the rest."""
    answer = api.json("POST", f"/tasks/{args.task_id}/{args.command}")
    _show(args, answer, lambda a: f"{args.task_id}: {a['status']}")
    return ExitCode.OK


def _run_template(api: Api, args: argparse.Namespace) -> int:
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    body = {"params": dict(args.param)}
    return _task_created(args, api.json("POST", f"/templates/{args.name}/runs", body=body, headers=headers))


def _listing(
    path: str, text: Callable[[list[dict[str, Any]]], str]
) -> Callable[[Api, argparse.Namespace], int]:
    def show(api: Api, args: argparse.Namespace) -> int:
        _show(args, api.json("GET", path), lambda answer: text(answer["items"]))
        return ExitCode.OK

    return show


_COMMANDS: dict[str, Callable[[Api, argparse.Namespace], int]] = {
    "list": _list,
    "get": _get,
    "submit": _submit,
    "wait": _wait,
    "approve": lambda api, args: _decide(api, args, {"action": "approve"}),
    "edit": _edit,
    "reject": lambda api, args: _decide(api, args, {"action": "reject", "on_reject": args.on_reject}),
    "answer": lambda api, args: _decide(api, args, {"action": "answer", "answer": args.answer}),
    "cancel": _settle,
    "resume": _settle,
    "templates list": _listing("/templates", render.templates),
    "templates run": _run_template,
    "webhooks list": _listing("/webhooks", render.webhooks),
}
