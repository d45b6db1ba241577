"""The planner's schema, as llama.cpp enforces it: its own converter, its own grammar engine.

The `json_object` dialect's schema goes through llama-cpp-python's JSON-schema-to-GBNF
converter; the grammar is then run by llama.cpp's sampler over SmolLM2's vocabulary, token
by token, exactly as the server constrains an answer. Skipped only when the embedded model
package is absent (`make test` installs it).
"""

from __future__ import annotations

import ctypes
import json
from typing import Any

import pytest

from exosuit.domain.plan import plan_json_schema
from exosuit.llm import embedded

llama_cpp = pytest.importorskip("llama_cpp")
from llama_cpp import llama_cpp as C  # noqa: E402
from llama_cpp.llama_grammar import json_schema_to_gbnf  # noqa: E402


@pytest.fixture(scope="module")
def vocabulary() -> Any:
    weights = embedded.weights()
    if weights is None:
        pytest.skip("the embedded model package is not installed (`make setup` installs it)")
    return llama_cpp.Llama(str(weights), vocab_only=True, verbose=False)


def accepts(llm: Any, grammar: str, text: str) -> bool:
    """Whether llama.cpp's grammar sampler lets `text`, then the end of the answer, through."""
    vocab = C.llama_model_get_vocab(llm.model)
    sampler = C.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    assert sampler, "llama.cpp refused to parse the grammar"
    try:
        for token in [*llm.tokenize(text.encode(), add_bos=False, special=False), llm.token_eos()]:
            candidate = (C.llama_token_data * 1)(C.llama_token_data(token, 0.0, 0.0))
            array = C.llama_token_data_array(candidate, 1, -1, False)
            C.llama_sampler_apply(sampler, ctypes.byref(array))
            if candidate[0].logit == float("-inf"):
                return False
            if token != llm.token_eos():
                C.llama_sampler_accept(sampler, token)
        return True
    finally:
        C.llama_sampler_free(sampler)


def answer(*steps: dict[str, Any]) -> str:
    return json.dumps({"steps": list(steps)})


def step(title: str, tool: str | None = None) -> dict[str, Any]:
    kind = "tool" if tool else "llm"
    return {"title": title, "instructions": "Do it.", "kind": kind, "tool": tool, "risk": "low", "args": None}


@pytest.fixture(scope="module")
def grammar() -> str:
    return json_schema_to_gbnf(json.dumps(plan_json_schema("json_object", min_steps=1, max_steps=3)))


def test_a_valid_plan_passes_the_grammar(vocabulary: Any, grammar: str) -> None:
    assert accepts(vocabulary, grammar, answer(step("Draft"), step("Count", "word_count")))


def test_the_grammar_refuses_an_unknown_tool(vocabulary: Any, grammar: str) -> None:
    assert not accepts(vocabulary, grammar, answer(step("Fax it", "send_fax")))


def test_the_grammar_refuses_too_many_steps_and_none(vocabulary: Any, grammar: str) -> None:
    assert accepts(vocabulary, grammar, answer(*(step(f"S{n}") for n in range(3))))
    assert not accepts(vocabulary, grammar, answer(*(step(f"S{n}") for n in range(4))))
    assert not accepts(vocabulary, grammar, answer())


def test_the_grammar_refuses_a_missing_field_and_an_unknown_risk(vocabulary: Any, grammar: str) -> None:
    no_risk = {k: v for k, v in step("Draft").items() if k != "risk"}
    assert not accepts(vocabulary, grammar, answer(no_risk))
    assert not accepts(vocabulary, grammar, answer(step("Draft") | {"risk": "extreme"}))


def test_why_json_object_gets_its_own_schema(vocabulary: Any) -> None:
    """OpenAI's nullable type union loses the enum in llama.cpp's converter: any tool passes."""
    union = json_schema_to_gbnf(json.dumps(plan_json_schema("json_schema")))
    assert accepts(vocabulary, union, answer(step("Fax it", "send_fax")))
