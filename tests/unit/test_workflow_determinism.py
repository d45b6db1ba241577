"""The workflows run with every module passed through the sandbox (exosuit/cli/worker.py): the
sandbox no longer re-imports them per run, nor wraps what they call. What keeps them
deterministic is checked here, on the code the workflows import (ours, transitively): no
module that reads a clock, a random source, the environment, a file or the network, and no
clock read but Temporal's (`workflow.now()`). The replay test (tests/system/test_replay.py)
checks the result against a recorded history."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp  # import-linter's import graph

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ("workflows.task", "workflows.outbox", "workflows.schedules")
# What the workflows' code may import from outside the project: pure computation.
ALLOWED = {
    "__future__", "asyncio", "collections", "contextlib", "dataclasses", "datetime", "enum",
    "functools", "hashlib", "hmac", "json", "re", "typing", "math", "difflib", "base64",
    "temporalio", "pydantic", "jsonschema",
}  # fmt: skip
CLOCKS = {"now", "utcnow", "today", "fromtimestamp"}  # datetime's reads of the real clock


def _workflow_code() -> tuple[set[str], set[str]]:
    """The project's modules the workflows import (transitively), and the outside ones."""
    graph = grimp.build_graph("workflows", "exosuit", include_external_packages=True)
    modules: set[str] = set(WORKFLOWS)
    for name in WORKFLOWS:
        modules |= graph.find_upstream_modules(name)
    ours = {m for m in modules if m.split(".")[0] in ("workflows", "exosuit")}
    return ours, {m.split(".")[0] for m in modules - ours}


def _source(module: str) -> Path:
    path = ROOT / (module.replace(".", "/") + ".py")
    return path if path.exists() else ROOT / module.replace(".", "/") / "__init__.py"


def test_the_workflows_import_only_pure_code() -> None:
    ours, outside = _workflow_code()
    assert all(m.startswith(("workflows.", "exosuit.domain.")) for m in ours), sorted(ours)
    assert outside <= ALLOWED, sorted(outside - ALLOWED)


def test_the_workflows_read_no_clock_but_temporals() -> None:
    ours, _ = _workflow_code()
    found = []
    for module in sorted(ours):
        for node in ast.walk(ast.parse(_source(module).read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCKS
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "workflow")
            ):
                found.append(f"{module}:{node.lineno}")
    assert not found, found
