"""The rules planner: a deterministic plan from the task's own words, at once.

One step per listed line or sentence that asks for an action; actions joined by "and",
"then" or a comma are split into steps of their own; sentences that ask for nothing
(context, constraints) travel with every step. A step's title is its first few words; a
tool step comes from plain words where the tool exists ("save it as a file" runs
`write_file`, "count the words" runs `word_count`); risk comes from policy alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from exosuit.domain.autonomy import Risk, risk_floor
from exosuit.domain.plan import MAX_STEPS, PlanStep
from exosuit.domain.task import STEP_TITLE_MAX_CHARS, StepKind
from exosuit.domain.tools import ASK_HUMAN, PREVIOUS_RESULT, ToolSpec

# Imperative verbs that start an action. Reading and looking are context, not steps.
ACTION_VERBS = frozenset(
    [
        "add",
        "analyse",
        "analyze",
        "announce",
        "answer",
        "apologise",
        "apologize",
        "archive",
        "assess",
        "attach",
        "audit",
        "book",
        "brainstorm",
        "build",
        "calculate",
        "categorise",
        "categorize",
        "chart",
        "check",
        "choose",
        "classify",
        "clean",
        "collate",
        "collect",
        "combine",
        "compare",
        "compile",
        "compute",
        "condense",
        "configure",
        "confirm",
        "convert",
        "copy",
        "correct",
        "count",
        "create",
        "critique",
        "decide",
        "define",
        "delete",
        "deliver",
        "describe",
        "design",
        "document",
        "draft",
        "edit",
        "email",
        "e-mail",
        "enumerate",
        "estimate",
        "evaluate",
        "expand",
        "explain",
        "export",
        "extract",
        "file",
        "fill",
        "finalise",
        "finalize",
        "find",
        "fix",
        "flag",
        "format",
        "gather",
        "generate",
        "give",
        "group",
        "highlight",
        "identify",
        "illustrate",
        "improve",
        "invite",
        "label",
        "list",
        "make",
        "map",
        "mark",
        "measure",
        "merge",
        "message",
        "name",
        "notify",
        "outline",
        "paraphrase",
        "pick",
        "plan",
        "polish",
        "post",
        "prepare",
        "present",
        "prioritise",
        "prioritize",
        "produce",
        "promote",
        "proofread",
        "propose",
        "provide",
        "publish",
        "put",
        "rank",
        "rate",
        "recommend",
        "redraft",
        "reference",
        "remind",
        "remove",
        "rename",
        "reorder",
        "rephrase",
        "reply",
        "report",
        "research",
        "respond",
        "restructure",
        "review",
        "revise",
        "rewrite",
        "reword",
        "save",
        "schedule",
        "score",
        "select",
        "send",
        "share",
        "shorten",
        "simplify",
        "sketch",
        "sort",
        "spell-check",
        "split",
        "store",
        "structure",
        "suggest",
        "summarise",
        "summarize",
        "tabulate",
        "tag",
        "test",
        "thank",
        "track",
        "translate",
        "turn",
        "update",
        "upload",
        "verify",
        "visualise",
        "visualize",
        "welcome",
        "write",
    ]
)

# Words before the verb that say nothing about the action.
_FILLER = re.compile(
    r"^(?:(?:please|kindly|also|just|now|first(?:ly)?|second(?:ly)?|third(?:ly)?|next|then|"
    r"finally|lastly|afterwards|after that|and|can you|could you|would you|will you|"
    r"i(?:'d| would) like you to|i need you to|we need you to|you should|make sure to|"
    r"don't forget to|remember to)[\s,]+)+",
    re.IGNORECASE,
)
# "I need a summary of …": a request for a thing is an action too.
_REQUEST = re.compile(r"^(?:i|we)\s+(?:need|want|would like)\s+(?:a|an|the|some)\b", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|[a-z][.)])\s+", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Where one action may end and the next begin: "then", "and then", ", then", "and", ",", ";".
_JOINS = re.compile(
    r"(\s*,?\s*\b(?:and then|then|after that|afterwards)\b\s*|\s*[,;]\s*(?:and\s+)?|\s+and\s+)", re.I
)
_TITLE_BREAKS = frozenset(
    [
        "for",
        "to",
        "with",
        "in",
        "on",
        "about",
        "into",
        "from",
        "by",
        "using",
        "so",
        "that",
        "which",
        "because",
        "when",
    ]
)
_TITLE_WORDS = 7


@dataclass(frozen=True)
class ToolIntent:
    """Plain words that ask for a tool."""

    tool: str
    pattern: re.Pattern[str]


INTENTS = (
    ToolIntent(
        "write_file",
        re.compile(
            r"\b(?:save|store|export|write|put)\b.*\b(?:to|as|in|into)\s+(?:a\s+|the\s+)?(?:\w+\s+)?file\b",
            re.I,
        ),
    ),
    ToolIntent("word_count", re.compile(r"\bcount\b.*\bwords?\b|\bword count\b|\bhow many words\b", re.I)),
    ToolIntent("send_email", re.compile(r"\b(?:e-?mail|send)\b.*\bto\b.*@", re.I)),
    ToolIntent("http_request", re.compile(r"\bpost\b.*\bto\b.*(?:https?://|\bwebhook\b|\bendpoint\b)", re.I)),
    # "ask me which tone to use": a question to the team, answered before the next step
    ToolIntent(
        "ask_human",
        re.compile(r"^\W*(?:then\s+|please\s+)?ask\s+(?:me|us|the team|a person|someone)\b", re.I),
    ),
)


def rules_plan(title: str, instructions: str, tools: Mapping[str, ToolSpec]) -> list[PlanStep]:
    """A plan from the task's words; the task as one step when it names no action."""
    actions: list[str] = []
    context: list[str] = []
    for unit in _units(instructions):
        clauses = _clauses(unit)
        found = [c for c in clauses if _is_action(c, tools)]
        if found:
            actions.extend(found)
        else:
            context.append(_sentence(unit))
    if not actions:
        return [PlanStep(title=_clip(title) or "Task", instructions=instructions.strip() or title)]
    steps: list[PlanStep] = []
    titles: set[str] = set()
    for clause in actions[:MAX_STEPS]:
        steps.append(_step(clause, context, tools, first=not steps, taken=titles))
    return steps


def _units(text: str) -> list[str]:
    """Each listed line (a bullet or a number), and each sentence of the other lines."""
    units: list[str] = []
    for line in (line.strip() for line in text.splitlines()):
        if _BULLET.match(line):
            units.append(_BULLET.sub("", line))
        else:
            units.extend(s for s in _SENTENCE_END.split(line) if s.strip())
    return units


def _clauses(unit: str) -> list[str]:
    """A sentence cut where a new action starts: a cut stands only before a verb."""
    pieces = _JOINS.split(unit)  # text, separator, text, separator, ...
    clauses = [pieces[0]]
    for separator, piece in zip(pieces[1::2], pieces[2::2], strict=True):
        if _verb(piece) is not None and len(clauses[-1].split()) > 1:
            clauses.append(piece)
        else:
            clauses[-1] += separator + piece
    return [c.strip(" ,;") for c in clauses if c.strip(" ,;")]


def _core(clause: str) -> str:
    return _FILLER.sub("", clause.strip()).strip()


def _verb(clause: str) -> str | None:
    words = _core(clause).split()
    if not words:
        return None
    first = words[0].lower().strip(",.:;!?")
    return first if first in ACTION_VERBS else None


def _is_action(clause: str, tools: Mapping[str, ToolSpec]) -> bool:
    return (
        _verb(clause) is not None or bool(_REQUEST.match(_core(clause))) or _intent(clause, tools) is not None
    )


def _intent(clause: str, tools: Mapping[str, ToolSpec]) -> str | None:
    return next((i.tool for i in INTENTS if i.tool in tools and i.pattern.search(clause)), None)


def _step(
    clause: str, context: list[str], tools: Mapping[str, ToolSpec], *, first: bool, taken: set[str]
) -> PlanStep:
    core = _core(clause)
    tool = _intent(clause, tools)
    title = _unique(_title(core), taken)
    if tool is None:
        text = _sentence(core)
        if context:
            text += "\n\nContext: " + " ".join(context)
        return PlanStep(title=title, instructions=text, kind=StepKind.LLM, tool=None, risk=Risk.LOW)
    # A tool that saves its instructions saves what came before it ("save it as a file").
    text = PREVIOUS_RESULT if tools[tool].saves_instructions and not first else _sentence(core)
    return PlanStep(
        title=title,
        instructions=text,
        kind=StepKind.TOOL,
        tool=tool,
        risk=risk_floor(tools[tool].side_effects),
        args={"question": text} if tool == ASK_HUMAN.name else None,  # asked in the task's words
    )


def _title(core: str) -> str:
    """The first words, up to where the object ends (a preposition after three words)."""
    words = core.rstrip(".!?;:").split()
    kept: list[str] = []
    for word in words[:_TITLE_WORDS]:
        if len(kept) >= 3 and word.lower() in _TITLE_BREAKS:
            break
        kept.append(word)
    return _clip(" ".join(kept).rstrip(",:;"))


def _clip(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text[: STEP_TITLE_MAX_CHARS // 3].rstrip()


def _unique(title: str, taken: set[str]) -> str:
    candidate, n = title, 2
    while candidate.lower() in taken:
        candidate, n = f"{title} ({n})", n + 1
    taken.add(candidate.lower())
    return candidate


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
