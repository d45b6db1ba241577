"""`exosuit export decisions`: every decision as JSON Lines on stdout, for evaluation sets.

It reads the database directly, like the other administration commands (whoever can run it
on the server is an operator); each export is written to the administration audit.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from exosuit.domain.decision_records import VERDICTS, ExportFormat
from exosuit.settings import Settings
from exosuit.storage.db import Database
from exosuit.storage.decision_export import Filters, audit_export, export_secrets, records
from exosuit.storage.tables import Team


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def add_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="data out of Exosuit").add_subparsers(
        dest="action", required=True
    )
    decisions = export.add_parser("decisions", help="every decision as JSON Lines on stdout (secrets masked)")
    decisions.add_argument("--team", action="append", help="repeatable (default: every team)")
    decisions.add_argument(
        "--format", choices=[f.value for f in ExportFormat], default=ExportFormat.RAW.value
    )
    decisions.add_argument("--since", type=_moment, help="ISO-8601; UTC unless it says")
    decisions.add_argument("--until", type=_moment)
    decisions.add_argument("--template")
    decisions.add_argument("--kind", choices=["plan", "step", "output", "cost", "question"])
    decisions.add_argument("--verdict", choices=list(VERDICTS))


async def run(db: Database, args: argparse.Namespace, settings: Settings) -> int:
    teams = args.team or await _every_team(db)
    form = ExportFormat(args.format)
    filters = Filters(teams, args.since, args.until, args.template, args.kind, args.verdict)
    await audit_export(db, f"cli:{getpass.getuser()}", form, filters)
    async for record in records(db, filters, form, export_secrets(settings)):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


async def _every_team(db: Database) -> list[str]:
    async with db.session() as session:
        return list(await session.exec(select(Team.name).order_by(col(Team.name))))
