"""Local commands open the deployment's database; they never make one by accident.

Run outside a data dir, `exosuit usage` used to create `./var/exosuit.db` and a new secret
and print an empty table. Now a local command refuses unless the database exists (or is a
server's: `EXOSUIT_DATABASE_URL`); only the commands that set a deployment up (`user add`,
`team set`) may create it, and only in a data dir named on purpose (`EXOSUIT_DATA_DIR`).
"""

from __future__ import annotations

import argparse

from exosuit.settings import Settings

SETS_UP = {("user", "add"), ("team", "set")}


def refusal(settings: Settings, args: argparse.Namespace) -> str | None:
    """Why this local command must not run here, or None."""
    command = (args.command, getattr(args, "action", None))
    if settings.database_url is None:
        database = (settings.data_dir / "exosuit.db").resolve()
        named = "data_dir" in settings.model_fields_set
        if not database.is_file() and not (named and command in SETS_UP):
            where = f"EXOSUIT_DATA_DIR={settings.data_dir}" if named else "the default data dir"
            return (
                f"no Exosuit database at {database} ({where}): run this where `exosuit dev` keeps its "
                "data, or set EXOSUIT_DATA_DIR (to create one there: `exosuit user add`) or "
                "EXOSUIT_DATABASE_URL"
            )
        return None
    # A server's database, the secret not given: a new one made here could verify nothing.
    generated = settings.data_dir / "secret_key"
    if args.command == "audit" and not settings.secret_key and not generated.is_file():
        return "checking the audit needs the deployment's secret: set EXOSUIT_SECRET_KEY"
    return None
