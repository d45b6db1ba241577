"""What a tool step may send: URLs normalised before the allow-list compares path segments,
a header policy for drafted headers, header-safe email fields, and no prompt fence in args."""

from __future__ import annotations

from typing import Any

import pytest

from exosuit.domain.tools import ArgsInvalid, fenced, resolve_args
from exosuit.tooling import HttpConfig, SecretHeader, ToolsConfig, normalised_url

HOOKS = "http://127.0.0.1:9000/hooks/"


def config(*allow: str) -> ToolsConfig:
    secret = SecretHeader(prefix=HOOKS, name="Authorization", env="HOOK_TOKEN", format="Bearer {}")
    return ToolsConfig(http=HttpConfig(allow=list(allow or [HOOKS]), secret_headers=[secret]))


def request(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"method": "POST", "url": url, "headers": headers or {}, "body": "x"}


def check(cfg: ToolsConfig, args: dict[str, Any]) -> dict[str, Any]:
    spec = cfg.builtin_specs()["http_request"]
    return cfg.catalogue().check_args(spec, args)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hooks/%2e%2e/admin/delete-all",
        "http://127.0.0.1:9000/hooks/%2E%2E/%2e%2e/internal",
        "http://127.0.0.1:9000/hooks/.%2e/admin",
        "http://127.0.0.1:9000/hooks/a/../../admin",
        "http://127.0.0.1:9000/hooks/..;/admin",
        "http://127.0.0.1:9000/hooks/%2f..%2fadmin",
        "http://127.0.0.1:9000/hooks\\..\\admin",
    ],
)
def test_a_url_that_climbs_out_of_its_allowed_prefix_is_refused(url: str) -> None:
    with pytest.raises(ArgsInvalid):
        check(config(), request(url))


def test_a_prefix_without_a_trailing_slash_matches_whole_segments_only() -> None:
    cfg = config("http://127.0.0.1:9000/hooks")
    check(cfg, request("http://127.0.0.1:9000/hooks/a"))
    check(cfg, request("http://127.0.0.1:9000/hooks"))
    with pytest.raises(ArgsInvalid):
        check(cfg, request("http://127.0.0.1:9000/hooksevil/a"))


def test_dot_segments_that_stay_inside_the_prefix_are_resolved_not_refused() -> None:
    cfg = config()
    assert normalised_url("http://127.0.0.1:9000/hooks/a/%2e%2e/b") == "http://127.0.0.1:9000/hooks/b"
    check(cfg, request("http://127.0.0.1:9000/hooks/a/../b"))


@pytest.mark.parametrize(
    "name",
    [
        "Transfer-Encoding",
        "content-length",
        "Host",
        "HOST",
        "Connection",
        "Upgrade",
        "authorization",  # the configured secret header's name, in another case
        "Idempotency-Key",
        "Bad Name",
    ],
)
def test_framing_routing_and_secret_header_names_are_refused_in_drafted_headers(name: str) -> None:
    with pytest.raises(ArgsInvalid, match="header"):
        check(config(), request(f"{HOOKS}x", {name: "4"}))


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ArgsInvalid, match="header"):
        check(config(), request(f"{HOOKS}x", {"X-Note": "a\r\nHost: internal-admin"}))


def test_ordinary_drafted_headers_pass() -> None:
    check(config(), request(f"{HOOKS}x", {"Content-Type": "application/json", "X-Trace": "1"}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", "Hello\n"), ("subject", "Hello\r\n"), ("to", ["a@example.com\n"])],
)
def test_an_email_field_ending_in_a_line_break_is_refused(field: str, value: Any) -> None:
    cfg = ToolsConfig.model_validate(
        {"email": {"smtp_host": "127.0.0.1", "sender": "x@example.com", "allow_domains": ["example.com"]}}
    )
    args = {"to": ["a@example.com"], "subject": "Hi", "body": "b"} | {field: value}
    with pytest.raises(ArgsInvalid):
        cfg.catalogue().check_args(cfg.builtin_specs()["send_email"], args)


def test_the_untrusted_data_fence_never_reaches_a_tools_arguments() -> None:
    previous = "Summary follows.\n" + fenced("tool http_request", "the feed said hello")
    args = resolve_args({"body": "{previous result}", "url": f"{HOOKS}x"}, previous)
    assert "<<<" not in args["body"] and ">>>" not in args["body"]
    assert "the feed said hello" in args["body"] and args["body"].startswith("Summary follows.")
