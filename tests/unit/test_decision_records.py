"""How an exported decision reads: masked secrets, the reviewer's edit, the chat shape."""

from __future__ import annotations

from typing import Any

import pytest

from exosuit.domain.decision_records import MASK, ExportFormat, edit_of, masked, shaped


def record(**fields: Any) -> dict[str, Any]:
    base = {
        "gate_id": "g_1",
        "task_id": "t_1",
        "team": "ops",
        "template": None,
        "kind": "step",
        "verdict": "approve",
        "model": "m",
        "prompt": "Task: say hi",
        "output": "Say hi.",
        "final": "Say hi.",
    }
    return base | fields


def test_every_secret_is_masked_in_every_text_however_deep() -> None:
    value = {
        "prompt": "key sk-live-123456 and tok-abcdef",
        "steps": [{"args": {"h": "Bearer tok-abcdef"}}],
        "n": 3,
    }
    assert masked(value, ["sk-live-123456", "tok-abcdef"]) == {
        "prompt": f"key {MASK} and {MASK}",
        "steps": [{"args": {"h": f"Bearer {MASK}"}}],
        "n": 3,
    }


def test_a_secret_inside_a_longer_one_leaves_no_piece_of_the_longer_behind() -> None:
    assert masked("x abcd-efgh-ijkl y", ["abcd", "abcd-efgh-ijkl"]) == f"x {MASK} y"


def test_an_edit_carries_the_kept_text_and_its_diff_and_only_an_edit_does() -> None:
    edit = edit_of("one\ntwo", "one\nthree", "edit")
    assert edit is not None and edit["text"] == "one\nthree"
    assert "-two" in edit["diff"] and "+three" in edit["diff"]
    assert edit_of("a", "a", "approve") is None


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        ({}, "Say hi."),
        ({"verdict": "edit", "final": "Say hello."}, "Say hello."),
        ({"verdict": "reject", "final": None}, None),  # nothing kept, nothing to learn
        ({"verdict": "revise", "final": None}, None),
        ({"verdict": "answer", "final": None}, None),
        ({"prompt": ""}, None),
    ],
)
def test_a_chat_example_answers_with_the_text_people_kept(fields: dict[str, Any], answer: str | None) -> None:
    example = shaped(record(**fields), ExportFormat.CHAT)
    if answer is None:
        assert example is None
        return
    assert example is not None
    assert example["messages"] == [
        {"role": "user", "content": "Task: say hi"},
        {"role": "assistant", "content": answer},
    ]
    assert example["metadata"]["gate_id"] == "g_1"


def test_a_raw_record_is_every_field() -> None:
    assert shaped(record(), ExportFormat.RAW) == record()
