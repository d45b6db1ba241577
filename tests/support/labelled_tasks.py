"""Sixteen realistic tasks, each labelled with the actions it asks for.

An action is covered by a step whose title or instructions contain all of its words
(prefixes: "summar" matches "summarise" and "summarize"), or, for a tool action, by a step
that runs that tool. A plan covers a task when its actions map to distinct steps in order:
a single step holding the whole task covers only one action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Action:
    words: tuple[str, ...] = ()
    tool: str | None = None

    def covered_by(self, step: dict[str, Any]) -> bool:
        if self.tool is not None:
            return step.get("tool") == self.tool
        text = f"{step['title']} {step['instructions']}".lower()
        return all(word in text for word in self.words)


@dataclass(frozen=True)
class LabelledTask:
    title: str
    instructions: str
    actions: tuple[Action, ...]


def A(*words: str) -> Action:  # reads as a label
    return Action(words=words)


def TOOL(name: str) -> Action:
    return Action(tool=name)


TASKS: tuple[LabelledTask, ...] = (
    LabelledTask(
        "Weekly support update",
        "Summarise this week's support tickets, then draft a short update for the team "
        "and save it as a file.",
        (A("summar", "tickets"), A("draft", "update"), TOOL("write_file")),
    ),
    LabelledTask(
        "Blog post on rate limits",
        "Write a 300-word blog post about our new API rate limits and count the words.",
        (A("write", "blog"), TOOL("word_count")),
    ),
    LabelledTask(
        "Onboarding a new engineer",
        "- Outline the first week for a new engineer\n- Draft a welcome email\n- List the accounts they need",
        (A("outline", "week"), A("draft", "welcome"), A("list", "accounts")),
    ),
    LabelledTask(
        "Release notes",
        "Read the changelog below. Group the changes by feature and write release notes for "
        "customers. Keep it under 200 words.\n\nChangelog: faster search; CSV export; fixed login "
        "loop; dark mode.",
        (A("group", "changes"), A("write", "release notes")),
    ),
    LabelledTask(
        "Spanish FAQ",
        "Translate the FAQ into Spanish and then proofread the translation.",
        (A("translat", "spanish"), A("proofread")),
    ),
    LabelledTask(
        "Planning meeting",
        "Prepare an agenda for Monday's planning meeting. Suggest three discussion topics and "
        "estimate how long each will take.",
        (A("agenda"), A("suggest", "topics"), A("estimate")),
    ),
    LabelledTask(
        "Invoice complaint",
        "A customer says their invoice is wrong. Write a friendly reply that apologises and "
        "explains how refunds work.",
        (A("write", "reply"),),
    ),
    LabelledTask(
        "Competitors",
        "Research three competitors of a note-taking app. Compare their pricing in a table. "
        "Recommend one feature we should copy.",
        (A("research", "competitors"), A("compare", "pricing"), A("recommend", "feature")),
    ),
    LabelledTask(
        "Bug triage",
        "Classify these bug reports by severity, then rank the top five and draft a message to "
        "the on-call engineer.",
        (A("classif", "severity"), A("rank"), A("draft", "message")),
    ),
    LabelledTask(
        "March newsletter",
        "Draft the March newsletter from the notes below, then shorten it to 150 words and save "
        "it to a file.\nNotes: two new hires, the office move, the spring offsite.",
        (A("draft", "newsletter"), A("shorten"), TOOL("write_file")),
    ),
    LabelledTask(
        "Job ad",
        "Write a job ad for a senior data engineer. Include the salary range and the remote "
        "policy. Count the words when done.",
        (A("write", "job ad"), TOOL("word_count")),
    ),
    LabelledTask(
        "Interview questions",
        "Generate ten interview questions for a product designer and group them by theme.",
        (A("generat", "questions"), A("group", "theme")),
    ),
    LabelledTask(
        "Incident summary",
        "Summarize the incident timeline below in five bullet points. Then list the follow-up "
        "actions with owners.\n\n09:02 alerts fire; 09:10 rollback; 09:40 all clear.",
        (A("summar", "timeline"), A("list", "follow-up")),
    ),
    LabelledTask(
        "Travel policy",
        "Review the attached travel policy for unclear rules and suggest clearer wording for each one.",
        (A("review", "policy"), A("suggest", "wording")),
    ),
    LabelledTask(
        "App names",
        "Brainstorm 10 names for a budgeting app, pick the best three, and explain why.",
        (A("brainstorm", "names"), A("pick", "three"), A("explain")),
    ),
    LabelledTask(
        "Duplicate customers",
        "Check the customer spreadsheet for duplicates. Propose a rule for merging them and "
        "write it up as a short document, then save it as a file.",
        (A("check", "duplicates"), A("propose", "rule"), A("write"), TOOL("write_file")),
    ),
)


def covers(actions: Sequence[Action], steps: Sequence[dict[str, Any]]) -> bool:
    """Every action maps to its own step, in order (a greedy match is exact for ordered sets)."""
    position = 0
    for action in actions:
        while position < len(steps) and not action.covered_by(steps[position]):
            position += 1
        if position == len(steps):
            return False
        position += 1
    return True
