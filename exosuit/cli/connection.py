"""Where the HTTP commands find the server and their token: a flag, else the environment
(`EXOSUIT_URL`, `EXOSUIT_TOKEN`), else a config file, else the local default URL.

The config file is TOML, `$EXOSUIT_CONFIG` or `$XDG_CONFIG_HOME/exosuit/config.toml`
(`~/.config/exosuit/config.toml`): `url = "..."` and `token = "..."`. Nothing here reads the
settings, a data dir or a database: these commands run from any machine.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


class NotConfigured(Exception):
    """The config file cannot be read as one."""


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None


def config_path() -> Path:
    """The config file's path (it need not exist)."""
    explicit = os.environ.get("EXOSUIT_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "exosuit" / "config.toml"


def connection(url: str | None, token: str | None) -> Connection:
    """The server and token to use: the flags first, then the environment, then the file."""
    url = url or os.environ.get("EXOSUIT_URL")
    token = token or os.environ.get("EXOSUIT_TOKEN")
    if url is None or token is None:
        stored = _read(config_path())
        url = url or stored.get("url")
        token = token or stored.get("token")
    return Connection((url or DEFAULT_URL).rstrip("/"), token)


def _read(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as file:
            found = tomllib.load(file)
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise NotConfigured(f"cannot read the config file {path}: {exc}") from None
    unknown = sorted(set(found) - {"url", "token"})
    if unknown or not all(isinstance(v, str) for v in found.values()):
        raise NotConfigured(f'{path} may hold only url = "..." and token = "..." (found {unknown})')
    if "token" in found and mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"exosuit: warning: {path} holds a token and others may read it (chmod 600)", file=sys.stderr)
    return dict(found)
