"""No file in the repository cites a document the repository does not hold.

A clone is all a reader has: a Markdown link that resolves to nothing, or a `*.md` named in
code, a comment or a doc that is not in the tree, sends them nowhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

_THIS_FILE = Path(__file__).resolve()  # its examples below cite missing documents on purpose
ROOT = _THIS_FILE.parents[2]
# What is not ours, or is made by tools: nothing in them is a citation of ours.
_SKIPPED = {".git", ".venv", "node_modules", "var", "vendor", "histories", "__pycache__"}
_SKIPPED |= {".mypy_cache", ".ruff_cache", ".pytest_cache"}
_SKIPPED_SUFFIXES = {".png", ".jpg", ".gif", ".ico", ".gguf", ".db", ".pyc", ".lock"}
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_MD_MENTION = re.compile(r"(?<![\w/.-])([\w./-]*[\w-]\.md)\b")


def _files(root: Path) -> Iterator[Path]:
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in _SKIPPED and not d.endswith(".egg-info"))
        for name in sorted(names):
            path = Path(folder, name)
            if path.suffix not in _SKIPPED_SUFFIXES and path != _THIS_FILE:
                yield path


def _resolves(citation: str, cited_in: Path, root: Path) -> bool:
    """A citation holds relative to the citing file, the repository's root or its docs/."""
    target = citation.split("#", 1)[0].split("?", 1)[0]
    if not target:  # a link to a heading of the same page
        return True
    return any((base / target).exists() for base in (cited_in.parent, root, root / "docs"))


def dangling_citations(root: Path) -> list[str]:
    """`file: citation` for every link or `*.md` mention that names nothing in the tree."""
    found = []
    for path in _files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        citations = set()
        if path.suffix == ".md":
            citations |= {link for link in _LINK.findall(text) if not link.startswith(("#", "mailto:", "/"))}
        citations |= set(_MD_MENTION.findall(_URL.sub(" ", text)))
        found += [
            f"{path.relative_to(root)}: {citation}"
            for citation in sorted(citations)
            if not _URL.match(citation) and not _resolves(citation, path, root)
        ]
    return sorted(found)


def test_no_file_cites_a_document_the_repository_lacks() -> None:
    assert dangling_citations(ROOT) == []


def test_a_citation_of_a_missing_document_is_found(tmp_path: Path) -> None:
    missing = "ELSEWHERE.md"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.md").write_text("[the audit](audit.md), [up](../README.md#top)\n")
    (tmp_path / "README.md").write_text("See [the API](docs/api.md) and docs/api.md.\n")
    (tmp_path / "code.py").write_text(f'"""Shapes as {missing} says; see docs/gone.md."""\n')
    (tmp_path / "links.md").write_text(
        "[spec](https://example.com/SPEC.md) [image](docs/missing.png) [here](#top)\n"
    )
    assert dangling_citations(tmp_path) == [
        f"code.py: {missing}",
        "code.py: docs/gone.md",
        "docs/api.md: audit.md",
        "links.md: docs/missing.png",
    ]
