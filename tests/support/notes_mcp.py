"""The tests' own MCP server: notes kept in a JSON-lines file (NOTES_FILE), over stdio or HTTP.

`python -m tests.support.notes_mcp` serves it over stdio; `notes_app()` is its Streamable
HTTP app for an in-process uvicorn server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer


def notes_server(notes_file: Path) -> MCPServer:
    server = MCPServer("notes")

    @server.tool(description="Add a note with a title and text to the team's notebook.")
    def add_note(title: str, text: str, pinned: bool = False) -> str:
        entry = {"title": title, "text": text, "pinned": pinned}
        with notes_file.open("a") as out:
            out.write(json.dumps(entry) + "\n")
        return f"noted: {title}"

    @server.tool(description="Count the notes in the notebook.")
    def count_notes() -> str:
        return str(len(read_notes(notes_file)))

    return server


def read_notes(notes_file: Path) -> list[dict[str, Any]]:
    if not notes_file.exists():
        return []
    return [json.loads(line) for line in notes_file.read_text().splitlines() if line.strip()]


def notes_app(notes_file: Path) -> Any:
    return notes_server(notes_file).streamable_http_app(stateless_http=True, json_response=True)


if __name__ == "__main__":
    notes_server(Path(os.environ["NOTES_FILE"])).run("stdio")
