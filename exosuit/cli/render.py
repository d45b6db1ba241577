"""What the HTTP commands print for a person (`--output json` prints the API's JSON instead)."""

from __future__ import annotations

from typing import Any

from exosuit.domain.quorum import progress


def task(found: dict[str, Any]) -> str:
    """A task: its line, its gate, its steps, its result."""
    lines = [
        f"{found['id']}  {found['status']}  {found['autonomy']}  team {found['team']}  "
        f"by {found['submitted_by']}",
        f"  {found['title']}",
    ]
    gate = found.get("open_gate")
    if gate:
        who = "another approver must decide (four-eyes)" if gate.get("four_eyes") else "an approver decides"
        if gate.get("question"):
            who = "any member of the team answers (exosuit answer TASK_ID --answer TEXT)"
        lines.append(f"  open gate {gate['id']} ({gate['kind']}) since {gate['opened_at']}: {who}")
        if gate.get("question"):
            choices = f" [{' | '.join(gate['choices'])}]" if gate.get("choices") else ""
            lines.append(f"    asks: {gate['question']}{choices}")
        if gate.get("reason"):
            lines.append(f"    {gate['reason']}")
        quorum = progress(len(gate.get("approvals") or []), gate.get("approvals_needed") or 1)
        if quorum:
            lines.append(f"    {quorum} ({', '.join(gate['approvals']) or 'none yet'})")
    for step in found.get("steps", []):
        kind = f"tool {step['tool']}" if step["kind"] == "tool" else step["kind"]
        lines.append(
            f"  {step['index'] + 1}. [{step['status']}] {step['title']} ({kind}, {step['risk']} risk)"
        )
    if found.get("waiting_reason"):
        lines.append(f"  waiting: {found['waiting_reason']}")
    if found.get("error"):
        lines.append(f"  error: {found['error']}")
    if found.get("result"):
        lines.append("  result:")
        lines.extend(f"    {line}" for line in str(found["result"]).splitlines())
    return "\n".join(lines)


def table(rows: list[list[str]], header: list[str]) -> str:
    """Columns as wide as their widest cell; the last column is left as long as it is."""
    if not rows:
        return "(none)"
    every = [header, *rows]
    widths = [max(len(row[i]) for row in every) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in every
    )


def tasks(items: list[dict[str, Any]]) -> str:
    rows = [[t["id"], t["status"], t["autonomy"], t["team"], t["title"]] for t in items]
    return table(rows, ["ID", "STATUS", "AUTONOMY", "TEAM", "TITLE"])


def webhooks(items: list[dict[str, Any]]) -> str:
    rows = [[w["id"], w["team"], ",".join(w["events"]) or "(all)", w["url"]] for w in items]
    return table(rows, ["ID", "TEAM", "EVENTS", "URL"])


def templates(items: list[dict[str, Any]]) -> str:
    rows = [[t["name"], t["team"], t["autonomy"], ",".join(t["params"]), t["title"]] for t in items]
    return table(rows, ["NAME", "TEAM", "AUTONOMY", "PARAMS", "TITLE"])
