"""Task templates: `{{param}}` placeholders in a title and instructions, filled in per run."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


def placeholders(*texts: str) -> set[str]:
    """The parameter names the texts use."""
    return {m.group(1) for text in texts for m in PLACEHOLDER.finditer(text)}


def template_refusal(params: list[str], title: str, instructions: str) -> str | None:
    """Why a template is not well formed (an undeclared placeholder, a bad name), or None."""
    bad = [p for p in params if not PARAM_NAME.match(p)]
    if bad:
        return f"parameter names are letters, digits and _: {', '.join(bad)}"
    undeclared = placeholders(title, instructions) - set(params)
    if undeclared:
        return f"placeholders not declared in params: {', '.join(sorted(undeclared))}"
    return None


def params_refusal(declared: list[str], given: dict[str, str]) -> str | None:
    """Why a run's parameters do not fit the template, or None."""
    missing = [p for p in declared if p not in given]
    unknown = sorted(set(given) - set(declared))
    if missing:
        return f"missing params: {', '.join(missing)}"
    if unknown:
        return f"unknown params: {', '.join(unknown)}"
    return None


def render(text: str, params: dict[str, str]) -> str:
    """The text with each `{{name}}` replaced by its value (values are not scanned again)."""
    return PLACEHOLDER.sub(lambda m: params.get(m.group(1), m.group(0)), text)
