"""What a valid plan is: the schema the planner asks for, and its validation."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exosuit.domain.autonomy import Risk, apply_floor
from exosuit.domain.task import STEP_INSTRUCTIONS_MAX_CHARS, STEP_TITLE_MAX_CHARS, StepKind
from exosuit.domain.tools import DEFAULT_CATALOGUE, ArgsInvalid, Catalogue

MAX_STEPS = 20


class PlanStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=STEP_TITLE_MAX_CHARS)
    instructions: str = Field(min_length=1, max_length=STEP_INSTRUCTIONS_MAX_CHARS)
    kind: StepKind = StepKind.LLM
    tool: str | None = None
    risk: Risk = Risk.LOW
    # A tool step's arguments: an object, or (where a dialect cannot carry an open object)
    # a string holding its JSON; null or {} for a step that takes none.
    args: dict[str, Any] | None = None

    @field_validator("args", mode="before")
    @classmethod
    def _args_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"args is not valid JSON: {exc}") from None
        return value


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[PlanStep] = Field(min_length=1, max_length=MAX_STEPS)


class PlanInvalid(ValueError):
    """The plan broke a rule; the message is fit to send back to the model."""


def plan_json_schema(
    dialect: str = "json_schema",
    min_steps: int = 1,
    max_steps: int = MAX_STEPS,
    tool_names: list[str] | None = None,
) -> dict[str, Any]:
    """The schema the planner asks the model to answer in, in the endpoint's dialect.

    `json_schema` (OpenAI's strict structured outputs) takes the nullable tool as a type
    union. `json_object` goes to llama.cpp's grammar converter, which drops an enum that
    sits beside a type union and ignores nothing else here: so the tool is a bare enum
    (null included), and the step count is bounded by minItems/maxItems. A tool's `args`
    is an open object, which strict structured outputs cannot carry: there it is a string
    holding the JSON.
    """
    names = tool_names if tool_names is not None else sorted(DEFAULT_CATALOGUE.specs)
    tools: list[str | None] = [*names, None]
    tool: dict[str, Any] = {"enum": tools}
    args: dict[str, Any] = {"type": ["object", "null"]}
    if dialect != "json_object":
        tool = {"type": ["string", "null"], "enum": tools}
        args = {"type": ["string", "null"]}
    step = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "instructions", "kind", "tool", "risk", "args"],
        "properties": {
            "title": {"type": "string"},
            "instructions": {"type": "string"},
            "kind": {"type": "string", "enum": [k.value for k in StepKind]},
            "tool": tool,
            "risk": {"type": "string", "enum": [r.value for r in Risk]},
            "args": args,
        },
    }
    steps: dict[str, Any] = {"type": "array", "items": step}
    if dialect == "json_object":
        steps |= {"minItems": min_steps, "maxItems": max_steps}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["steps"],
        "properties": {"steps": steps},
    }


def validate_steps(
    raw: Any, min_steps: int = 1, max_steps: int = MAX_STEPS, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> list[PlanStep]:
    """Check a plan against the schema and the tool catalogue (each tool step's args against
    its tool's schema and the policy); raise risks to the floor policy sets."""
    try:
        plan = Plan.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'plan'}: {err['msg']}" for err in exc.errors()
        )
        raise PlanInvalid(f"the plan does not match the schema: {problems}") from None
    if not min_steps <= len(plan.steps) <= max_steps:
        raise PlanInvalid(f"a plan needs {min_steps} to {max_steps} steps, not {len(plan.steps)}")
    titles = [s.title.strip().lower() for s in plan.steps]
    if len(set(titles)) != len(titles):
        raise PlanInvalid("every step needs a title of its own; some repeat")
    steps = []
    for number, step in enumerate(plan.steps, start=1):
        if step.kind is StepKind.TOOL:
            spec = catalogue.spec(step.tool)
            if spec is None:
                known = ", ".join(sorted(catalogue.specs))
                raise PlanInvalid(f"step {number}: unknown tool {step.tool!r}; known: {known}")
            try:
                args = catalogue.check_args(spec, step.args) if spec.takes_args else None
            except ArgsInvalid as exc:
                raise PlanInvalid(f"step {number}: {exc}") from None
            risk = apply_floor(step.risk, catalogue.floor(spec))
            step = step.model_copy(update={"risk": risk, "args": args})
        else:
            step = step.model_copy(update={"tool": None, "args": None})
        steps.append(step)
    return steps


def parse_plan(
    text: str, min_steps: int = 1, max_steps: int = MAX_STEPS, catalogue: Catalogue = DEFAULT_CATALOGUE
) -> list[PlanStep]:
    """Parse the model's answer into validated steps, or raise PlanInvalid."""
    try:
        raw = json.loads(text, strict=False)  # small models put raw newlines in strings
    except json.JSONDecodeError as exc:
        raise PlanInvalid(f"the answer is not valid JSON: {exc}") from None
    return validate_steps(raw, min_steps, max_steps, catalogue)
