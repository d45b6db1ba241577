"""Questions a step asks a person: what the model called, and the answers the audit holds.

The audit chain is where a step's questions and their answers live (`gate.opened` of kind
`question`, `gate.decided` with action `answer`); the step's model activity reads them back
to show the model its own calls and the answers, so the workflow carries only ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exosuit.domain.autonomy import DecisionAction, GateKind
from exosuit.domain.contracts import Question
from exosuit.domain.task import EventAction
from exosuit.domain.tools import ASK_HUMAN, ASK_HUMAN_SCHEMA

MAX_CHOICES = 20
MAX_QUESTION_CHARS = 2000
MAX_CHOICE_CHARS = 200

# What a model step is offered besides answering (OpenAI `tools`).
ASK_HUMAN_FUNCTION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": ASK_HUMAN.name,
        "description": (
            "Ask a person of the task's team when you cannot go on without their decision or a "
            "fact only they know. Offer choices when the answer is one of a few. The step waits "
            "for the answer, which comes back as this function's result."
        ),
        "parameters": ASK_HUMAN_SCHEMA,
    },
}


class QuestionInvalid(ValueError):
    """The model's ask_human call cannot be put to a person (no question)."""


@dataclass(frozen=True)
class Exchange:
    """One question of a step's current run, and its answer once given."""

    gate_id: str
    question: Question
    answer: str | None = None
    answered_by: str | None = None  # the audit actor: user:EMAIL


def question_from_call(arguments: str, call_id: str | None) -> Question:
    """The question in a model's ask_human arguments (JSON), made fit to show: choices that
    are text, each once, within bounds. QuestionInvalid if it asks nothing."""
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        args = {"question": arguments}  # some models send the bare text
    if not isinstance(args, dict):
        args = {}
    text = args.get("question")
    if not isinstance(text, str) or not text.strip():
        raise QuestionInvalid("the model called ask_human without a question")
    return question_from_args(args, call_id)


def question_from_args(args: dict[str, Any], call_id: str | None = None) -> Question:
    """A question from ask_human's arguments (a planned step's, or a model's call)."""
    raw = args.get("choices")
    choices = (
        [c.strip()[:MAX_CHOICE_CHARS] for c in raw if isinstance(c, str) and c.strip()]
        if isinstance(raw, list)
        else []
    )
    why = args.get("why")
    return Question(
        text=str(args.get("question", "")).strip()[:MAX_QUESTION_CHARS],
        choices=list(dict.fromkeys(choices))[:MAX_CHOICES] or None,
        why=why.strip()[:MAX_QUESTION_CHARS] if isinstance(why, str) and why.strip() else None,
        call_id=call_id,
    )


def question_data(question: Question) -> dict[str, Any]:
    """What a question gate's `gate.opened` event says of its question."""
    data: dict[str, Any] = {"question": question.text, "choices": question.choices}
    if question.why:
        data["why"] = question.why
    if question.call_id:
        data["call_id"] = question.call_id
    return data


def exchanges(events: Iterable[tuple[str, str, dict[str, Any]]], step_id: str) -> list[Exchange]:
    """The questions of the step's latest run (since its last `step.started`), in order, with
    their answers, from the task's audit events as (actor, action, data)."""
    found: list[Exchange] = []
    for actor, action, data in events:
        if action == EventAction.STEP_STARTED and data.get("step_id") == step_id:
            found = []
        elif (
            action == EventAction.GATE_OPENED
            and data.get("kind") == GateKind.QUESTION
            and data.get("step_id") == step_id
        ):
            question = Question(
                data.get("question") or "", data.get("choices"), data.get("why"), data.get("call_id")
            )
            found.append(Exchange(data["gate_id"], question))
        elif action == EventAction.GATE_DECIDED and data.get("action") == DecisionAction.ANSWER:
            found = [
                Exchange(e.gate_id, e.question, data.get("answer"), actor)
                if e.gate_id == data.get("gate_id")
                else e
                for e in found
            ]
    return found


def conversation(asked: list[Exchange]) -> list[dict[str, Any]]:
    """The model's answered calls and their results, as chat messages after the prompt."""
    messages: list[dict[str, Any]] = []
    for number, exchange in enumerate(e for e in asked if e.answer is not None):
        q = exchange.question
        call_id = q.call_id or f"call_{number}"
        arguments = (
            {"question": q.text}
            | ({"choices": q.choices} if q.choices else {})
            | ({"why": q.why} if q.why else {})
        )
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": ASK_HUMAN.name, "arguments": json.dumps(arguments)},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": exchange.answer})
    return messages
