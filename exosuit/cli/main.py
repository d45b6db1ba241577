"""The `exosuit` command (docs/cli.md): administration here, the servers in serve.py."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from exosuit.cli import client
from exosuit.cli.arguments import count, finite
from exosuit.cli.exit_codes import ExitCode
from exosuit.cli.version import add_version
from exosuit.domain.autonomy import AutonomyLevel, Role
from exosuit.observability.logs import configure_logging, temporal_core_logging
from exosuit.observability.tracing import start_tracing, stop_tracing
from exosuit.settings import Settings


def _parser() -> argparse.ArgumentParser:
    from exosuit.cli import export  # the storage's imports are heavy: not for the HTTP commands

    parser = argparse.ArgumentParser(prog="exosuit", description="Human-in-the-loop jobs.")
    add_version(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="Temporal + worker + web, as `make run` starts them")
    dev.add_argument("--port", type=int, default=None)
    web = commands.add_parser("web", help="the web app alone")
    web.add_argument("--port", type=int, default=None)
    commands.add_parser("worker", help="one worker alone")

    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser(
        "add", help="create a user or add them to teams (a new password ends their sessions)"
    )
    add.add_argument("email")
    add.add_argument("--team", action="append", required=True, help="repeat for more teams")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--password")
    disable = user.add_parser("disable", help="end the user's sessions and stop their tokens, at once")
    disable.add_argument("email")

    team = commands.add_parser("team", help="manage teams").add_subparsers(dest="action", required=True)
    tset = team.add_parser("set", help="a team's policy")
    tset.add_argument("team")
    tset.add_argument("--max-autonomy", choices=[a.value for a in AutonomyLevel])
    tset.add_argument("--gate-deadline", type=finite, metavar="HOURS")
    tset.add_argument("--monthly-budget", type=finite, metavar="USD", help="0 removes the budget")
    tset.add_argument("--max-active-tasks", type=count, metavar="N", help="tasks not yet ended")
    tset.add_argument("--submissions-per-minute", type=count, metavar="N", help="per person")
    tset.add_argument(
        "--model-wait", type=finite, metavar="HOURS", help="how long a model outage is waited out"
    )
    tset.add_argument("--max-revisions", type=count, metavar="N", help="`revise` rejections per gate")
    tset.add_argument(
        "--quorum-high",
        type=count,
        metavar="N",
        help="distinct approvers (never the submitter) a high-risk gate needs; 1 (the default): one decides",
    )
    tset.add_argument(
        "--notify",
        action="append",
        metavar="URL",
        help="an Apprise URL that tells the team's approvers of gates, escalations and failures "
        "(repeatable; replaces the team's list; `{email}` in it: one message per approver; 'none' clears)",
    )

    usage = commands.add_parser("usage", help="model usage and cost by team, for a month")
    usage.add_argument("--month", help="YYYY-MM (default: this month)")
    usage.add_argument("--team")

    token = commands.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="a new token, printed alone on the last line")
    create.add_argument("email")
    create.add_argument("--name", default="default")
    create.add_argument("--expires-days", type=finite, metavar="N")
    listing = token.add_parser("list", help="a user's tokens: names, dates, state (never the token)")
    listing.add_argument("email")
    revoke = token.add_parser("revoke", help="revoke a user's tokens of that name")
    revoke.add_argument("email")
    revoke.add_argument("name")

    audit = commands.add_parser("audit", help="the audit chain").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="exit 0 if the chain holds, 1 with the first bad seq")
    which = verify.add_mutually_exclusive_group(required=True)
    which.add_argument("task_id", nargs="?")
    which.add_argument("--all", action="store_true", help="every task (exit 1 naming the broken ones)")
    audit.add_parser("checkpoint", help="sign every task's current head (workers do it every few minutes)")
    export.add_parser(commands)
    db = commands.add_parser("db", help="the database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema, under a lock (a migration Job runs this)")
    db.add_parser("current", help="the schema revision the database is at")
    db.add_parser("history", help="every migration, newest first")
    client.add_parsers(commands)  # list, get, submit, wait, approve...: over HTTP, from any machine
    return parser


async def _notify_refusal(settings: Settings, urls: list[str]) -> str | None:
    """A notification URL the outbound address policy refuses, said before it is stored."""
    from activities.notifications import destination_refusal

    for url in urls:
        if url.strip().lower() == "none":
            continue
        refusal = await destination_refusal(url, allow_loopback=settings.webhook_allow_loopback)
        if refusal:
            return f"{url.split(':', 1)[0]}:// target refused: {refusal}"
    return None


async def _administer(settings: Settings, args: argparse.Namespace) -> int:
    from exosuit.cli import admin, data_dir, export
    from exosuit.storage.db import Database, migrate

    refused = data_dir.refusal(settings, args)
    if refused:
        print(f"exosuit: {refused}", file=sys.stderr)
        return ExitCode.NOT_SET_UP
    refusal = await _notify_refusal(settings, getattr(args, "notify", None) or [])
    if refusal:
        print(f"exosuit: {refusal}", file=sys.stderr)
        return ExitCode.USAGE
    migrate(settings.resolved_database_url)
    db = Database.from_settings(settings)
    try:
        if args.command == "export":
            return await export.run(db, args, settings)
        # Only the audit needs the secret: read (or made) here, beside the database, never elsewhere.
        secret = settings.resolved_secret_key if args.command == "audit" else None
        return await admin.run(db, args, secret, settings)
    finally:
        await db.dispose()


SERVICE_NAMES = {"dev": "exosuit", "web": "exosuit-web", "worker": "exosuit-worker"}  # traces' default


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    if given and given[0] in client.COMMANDS:  # no settings, no data dir, no database: a URL and a token
        return client.main(given)
    args = _parser().parse_args(argv)
    settings = Settings()
    serving = args.command in ("dev", "web", "worker")
    level = settings.log_level or ("INFO" if serving else "WARNING")  # admin commands: their output only
    configure_logging(settings.log_format, secrets=settings.known_secrets, level=level)
    if serving:
        from temporalio.runtime import Runtime, TelemetryConfig

        from exosuit.cli import serve  # the servers' imports are heavy: only when serving

        core_logs = TelemetryConfig(logging=temporal_core_logging())  # Temporal's core logs: ours too
        Runtime.set_default(Runtime(telemetry=core_logs), error_if_already_set=False)
        service = settings.otel_service_name or SERVICE_NAMES[args.command]
        start_tracing(settings.otel_exporter_otlp_endpoint, service)
        port = getattr(args, "port", None) or settings.port
        try:
            if args.command == "dev":
                asyncio.run(serve.run_dev(settings, port))
            elif args.command == "web":
                asyncio.run(serve.run_web(settings, port))
            else:
                asyncio.run(serve.run_worker(settings))
        finally:
            stop_tracing()  # exports the spans still buffered
        _leave(0)
    if args.command == "db":
        return _schema(settings, args.action)
    _leave(asyncio.run(_administer(settings, args)))


def _leave(code: int) -> NoReturn:
    """Exit now, without the interpreter's teardown, once a command that may have used a
    Temporal client is done: threads of the client's native core may still call into Python
    while it finalizes, which aborts the process (SIGABRT, exit -6: seen after a worker's clean
    SIGTERM) and would read as a crash to whatever supervises it or scripts it. What needed
    flushing (spans, logs, output) is flushed first."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _schema(settings: Settings, action: str) -> int:
    """`exosuit db upgrade|current|history`: the schema, by hand (they never migrate otherwise)."""
    from exosuit.storage import schema
    from exosuit.storage.db import migrate

    url = settings.resolved_database_url
    if action == "upgrade":
        applied = migrate(url)
        print(f"applied {len(applied)} migrations: {' '.join(applied)}" if applied else "already at head")
    elif action == "current":
        print(schema.current(url) or "empty: no migration applied")
    else:
        for revision in schema.history(url):
            mark = " (head)" if revision.head else ""
            print(f"{revision.down or '<base>'} -> {revision.id}{mark}, {revision.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
