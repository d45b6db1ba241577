"""The administration commands: users, teams, tokens, usage, the audit chain."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from exosuit.cli.exit_codes import ExitCode
from exosuit.cli.team_cap import lower_running_tasks
from exosuit.domain.audit import anchor_key
from exosuit.domain.autonomy import AutonomyLevel, Role
from exosuit.settings import Settings
from exosuit.storage.audit_log import AuditLog
from exosuit.storage.db import Database, utcnow
from exosuit.storage.identity import Directory
from exosuit.storage.notifications import Notifications
from exosuit.storage.reports import Reports


async def run(
    db: Database, args: argparse.Namespace, secret: str | None, settings: Settings | None = None
) -> int:
    """Run one administration command; its exit code (`secret` checks audit anchors)."""
    directory = Directory(db)
    try:
        if args.command == "user":
            return await _user(directory, args)
        if args.command == "team":
            return await _team(directory, args, settings)
        if args.command == "usage":
            return await _usage(Reports(db), args.month, args.team)
        if args.command == "token":
            return await _token(directory, args)
        assert secret is not None, "the audit commands are given the secret"
        return await _audit(AuditLog(db, anchor_key(secret)), args)
    except LookupError as exc:  # no such user, team or token
        print(str(exc).strip("'\""), file=sys.stderr)
        return ExitCode.NOT_FOUND


async def _user(directory: Directory, args: argparse.Namespace) -> int:
    if args.action == "disable":
        await directory.disable_user(args.email)
        print(f"{args.email.lower()}: disabled; their sessions and tokens no longer work")
        return 0
    await directory.add_user(args.email, teams=args.team, role=Role(args.role), password=args.password)
    print(f"{args.email.lower()}: {args.role} of {', '.join(args.team)}")
    return 0


async def _team(directory: Directory, args: argparse.Namespace, settings: Settings | None) -> int:
    team = await directory.set_team_policy(
        args.team,
        max_autonomy=AutonomyLevel(args.max_autonomy) if args.max_autonomy else None,
        gate_deadline_seconds=None if args.gate_deadline is None else args.gate_deadline * 3600,
        monthly_budget_usd=args.monthly_budget,
        max_active_tasks=args.max_active_tasks,
        submissions_per_minute=args.submissions_per_minute,
        model_wait_seconds=None if args.model_wait is None else args.model_wait * 3600,
        max_revisions=args.max_revisions,
        quorum_high=args.quorum_high,
    )
    hours = team.gate_deadline_seconds / 3600
    budget = f"${team.monthly_budget_usd:g}" if team.monthly_budget_usd else "none"
    print(
        f"{team.name}: max autonomy {team.max_autonomy}, gate deadline {hours:g} h, "
        f"monthly budget {budget}, at most {team.max_active_tasks} active tasks, "
        f"{team.submissions_per_minute} submissions a minute per person, model outages waited out "
        f"for {team.model_wait_seconds / 3600:g} h, {team.max_revisions} revisions per gate, "
        f"{team.quorum_high} approval{'s' if team.quorum_high != 1 else ''} per high-risk gate"
    )
    if args.notify is not None:
        urls = [u for u in args.notify if u.strip().lower() != "none"]
        await Notifications(directory.db).set_targets(team.name, urls)
        schemes = ", ".join(u.split("://", 1)[0] + "://…" for u in urls) or "none"
        print(f"{team.name}: approvers are notified through {schemes}")
    if args.max_autonomy and settings is not None:  # running tasks follow a lowered cap
        cap = AutonomyLevel(team.max_autonomy)
        for line in await lower_running_tasks(settings, directory.db, team.name, cap):
            print(line)
    return 0


async def _token(directory: Directory, args: argparse.Namespace) -> int:
    if args.action == "list":
        now = utcnow()
        print(f"{'name':<24} {'created':<17} {'last used':<17} {'expires':<17} state")
        for t in await directory.tokens(args.email):
            state = (
                "revoked" if t.revoked_at else "expired" if t.expires_at and t.expires_at <= now else "live"
            )
            dates = f"{_when(t.created_at):<17} {_when(t.last_used_at):<17} {_when(t.expires_at):<17}"
            print(f"{t.name:<24} {dates} {state}")
        return 0
    if args.action == "revoke":
        revoked = await directory.revoke_token(args.email, args.name)
        if not revoked:
            print(f"{args.email.lower()} has no live token named {args.name!r}", file=sys.stderr)
            return ExitCode.NOT_FOUND
        print(f"revoked {revoked} token(s) named {args.name!r} of {args.email.lower()}")
        return 0
    token = await directory.create_token(args.email, name=args.name, expires_days=args.expires_days)
    print(f"token {args.name!r} for {args.email.lower()}:")
    print(token)
    return 0


async def _audit(audit: AuditLog, args: argparse.Namespace) -> int:
    if args.action == "checkpoint":
        print(f"signed a checkpoint of {await audit.checkpoint()} tasks' heads")
        return 0
    ids = await audit.task_ids() if args.all else [args.task_id]
    checkpoint = await audit.latest_checkpoint()  # read once, not once a task
    if not args.all and not await audit.known(args.task_id, checkpoint):
        print(f"{args.task_id}: no such task (no row, no audit event, no anchor)", file=sys.stderr)
        return ExitCode.NOT_FOUND
    broken = []
    for task_id in ids:
        check = await audit.verify(task_id, checkpoint=checkpoint)
        if check.ok:
            print(f"{task_id}: chain holds: {check.events} events")
        else:
            broken.append(task_id)
            where = f"seq {check.first_bad_seq} ({check.events} events)"
            print(f"{task_id}: chain broken at {where}: {check.reason}")
    if args.all:
        print(
            f"{len(ids) - len(broken)} of {len(ids)} chains hold"
            + (f"; broken: {', '.join(broken)}" if broken else "")
        )
    return ExitCode.REFUSED if broken else ExitCode.OK


async def _usage(reports: Reports, month: str | None, team: str | None) -> int:
    try:
        start = (
            datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
            if month
            else utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        )
    except ValueError:
        print(f"--month takes YYYY-MM, not {month!r}", file=sys.stderr)
        return ExitCode.USAGE
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


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"
