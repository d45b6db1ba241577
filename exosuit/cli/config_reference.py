"""docs/configuration.md, generated from `Settings`: its environment names, defaults and descriptions.

`make docs` (or `python -m exosuit.cli.config_reference`) writes the file; a unit test fails
when the committed copy differs from what this renders, so the reference cannot go stale.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from exosuit.settings import Settings

REFERENCE = Path(__file__).resolve().parents[2] / "docs/configuration.md"

_HEADER = """\
# Configuration

Every setting is an environment variable (an `.env` file is not read). This page is generated
from `Settings` in `exosuit/settings.py` by `make docs`; edit the field's `description` there,
not this file (a unit test fails when the two differ). The files some settings name are
described with what they configure: [models.md](models.md) for `providers.toml`,
[tools.md](tools.md) for `tools.toml`; what the limits do under load is in
[operations.md](operations.md).

| variable | type | default | meaning |
|---|---|---|---|
"""


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables a field is read from, first the one to prefer."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    prefix = Settings.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper()]


def type_name(annotation: Any) -> str:
    """A field's type as a reader needs it: `int`, `path`, or the values a literal allows."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in get_args(annotation) if arg is not type(None))
    if annotation is Path:
        return "path"
    return str(getattr(annotation, "__name__", annotation))


def default_text(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, Path) and not value.is_absolute():
        return f"`./{value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The whole reference, one row per setting in the order `Settings` declares them."""
    rows = []
    for name, field in Settings.model_fields.items():
        names = ", ".join(f"`{env}`" for env in env_names(name, field))
        cells = (names, type_name(field.annotation), default_text(field), field.description or "")
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |\n")
    return _HEADER + "".join(rows)


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REFERENCE
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
