"""The catalogue of tools a plan may use: what each does and whether it touches the world.

Pure data, shared by the planner's validation, the policy's risk floor and the workers
that run the tools (activities/tools.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# In a tool step's instructions, stands for the latest text a model step wrote before it.
PREVIOUS_RESULT = "{previous result}"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    side_effects: bool
    saves_instructions: bool = False  # the instructions are the content it writes


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "write_file",
            "Write the step's instructions (the document to save; "
            f"{PREVIOUS_RESULT} stands for the latest text a model step wrote) to the task's workspace "
            "as a file; the step's title names the file.",
            side_effects=True,
            saves_instructions=True,
        ),
        ToolSpec(
            "word_count",
            "Count the words, lines and characters of the latest text a model step wrote.",
            side_effects=False,
        ),
    )
}
