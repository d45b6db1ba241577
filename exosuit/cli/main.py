"""The `exosuit` command (CONTRACT.md, CLI): administration here, the servers in serve.py."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from exosuit.domain.autonomy import AutonomyLevel, Role
from exosuit.settings import Settings
from exosuit.storage.audit_log import AuditLog
from exosuit.storage.db import Database, migrate, utcnow
from exosuit.storage.identity import Directory
from exosuit.storage.reports import Reports


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exosuit", description="Human-in-the-loop jobs.")
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="Temporal + worker + web, as `make run` starts them")
    dev.add_argument("--port", type=int, default=None)
    web = commands.add_parser("web", help="the web app alone")
    web.add_argument("--port", type=int, default=None)
    commands.add_parser("worker", help="one worker alone")

    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user or add them to teams")
    add.add_argument("email")
    add.add_argument("--team", action="append", required=True, help="repeat for more teams")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--password")

    team = commands.add_parser("team", help="manage teams").add_subparsers(dest="action", required=True)
    tset = team.add_parser("set", help="a team's policy")
    tset.add_argument("team")
    tset.add_argument("--max-autonomy", choices=[a.value for a in AutonomyLevel])
    tset.add_argument("--gate-deadline", type=float, metavar="HOURS")
    tset.add_argument("--monthly-budget", type=float, metavar="USD", help="0 removes the budget")

    usage = commands.add_parser("usage", help="model usage and cost by team, for a month")
    usage.add_argument("--month", help="YYYY-MM (default: this month)")
    usage.add_argument("--team")

    token = commands.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="a new token, printed alone on the last line")
    create.add_argument("email")
    create.add_argument("--name", default="default")

    audit = commands.add_parser("audit", help="the audit chain").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="exit 0 if the chain holds, 1 with the first bad seq")
    verify.add_argument("task_id")
    return parser


async def _with_db(settings: Settings, args: argparse.Namespace) -> int:
    migrate(settings.resolved_database_url)
    db = Database.from_url(settings.resolved_database_url)
    directory = Directory(db)
    try:
        if args.command == "user":
            await directory.add_user(
                args.email, teams=args.team, role=Role(args.role), password=args.password
            )
            print(f"{args.email.lower()}: {args.role} of {', '.join(args.team)}")
        elif args.command == "team":
            seconds = None if args.gate_deadline is None else args.gate_deadline * 3600
            level = AutonomyLevel(args.max_autonomy) if args.max_autonomy else None
            team = await directory.set_team_policy(
                args.team,
                max_autonomy=level,
                gate_deadline_seconds=seconds,
                monthly_budget_usd=args.monthly_budget,
            )
            hours = team.gate_deadline_seconds / 3600
            budget = f"${team.monthly_budget_usd:g}" if team.monthly_budget_usd else "none"
            print(
                f"{team.name}: max autonomy {team.max_autonomy}, gate deadline {hours:g} h, "
                f"monthly budget {budget}"
            )
        elif args.command == "usage":
            return await _usage(Reports(db), args.month, args.team)
        elif args.command == "token":
            try:
                token = await directory.create_token(args.email, name=args.name)
            except LookupError as exc:
                print(exc, file=sys.stderr)
                return 2
            print(f"token {args.name!r} for {args.email.lower()}:")
            print(token)
        elif args.command == "audit":
            check = await AuditLog(db).verify(args.task_id)
            if check.events == 0:
                print(f"no audit events for task {args.task_id}", file=sys.stderr)
                return 1
            if not check.ok:
                print(f"chain broken at seq {check.first_bad_seq} ({check.events} events)")
                return 1
            print(f"chain holds: {check.events} events")
        return 0
    finally:
        await db.dispose()


async def _usage(reports: Reports, month: str | None, team: str | None) -> int:
    try:
        start = (
            datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
            if month
            else utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        )
    except ValueError:
        print(f"--month takes YYYY-MM, not {month!r}", file=sys.stderr)
        return 2
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    rows = await reports.usage(start, end, team)
    print(f"{'month':<8} {'team':<24} {'calls':>6} {'prompt':>10} {'completion':>10} {'cost_usd':>12}")
    for row in rows:
        print(
            f"{start:%Y-%m} {row.team:<24} {row.calls:>6} {row.prompt_tokens:>10} "
            f"{row.completion_tokens:>10} {row.cost_usd:>12.6f}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    if args.command in ("dev", "web", "worker"):
        from exosuit.cli import serve  # the servers' imports are heavy: only when serving

        port = getattr(args, "port", None) or settings.port
        if args.command == "dev":
            asyncio.run(serve.run_dev(settings, port))
        elif args.command == "web":
            asyncio.run(serve.run_web(settings, port))
        else:
            asyncio.run(serve.run_worker(settings))
        return 0
    return asyncio.run(_with_db(settings, args))


if __name__ == "__main__":
    sys.exit(main())
