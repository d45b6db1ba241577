"""The HTTP commands' side of the API: one call, its answer, or the error it stands for."""

from __future__ import annotations

from typing import Any

import httpx

from exosuit.cli.exit_codes import ExitCode, for_status

LONG_POLL_SECONDS = 60  # the most a `wait` call holds


class ApiError(Exception):
    """What went wrong, as a line for stderr and the exit code it maps to."""

    def __init__(
        self,
        code: ExitCode,
        message: str,
        details: list[str] | None = None,
        document: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or []
        self.document = document  # the problem the server answered, if it answered one

    def lines(self) -> list[str]:
        return [f"exosuit: {self.message}", *(f"  {d}" for d in self.details)]


class Api:
    """`/api/v1` of one server, as one person (their token)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=f"{url}/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "exosuit-cli"},
            timeout=LONG_POLL_SECONDS + 15,
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The answer to one call; an error answer or no answer raises ApiError."""
        try:
            response = self.http.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(ExitCode.UNAVAILABLE, f"{self.url} did not answer: {exc}") from None
        if response.is_error:
            raise problem(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


def problem(response: httpx.Response) -> ApiError:
    """An error answer as an ApiError: `403 /problems/four-eyes: ...` and, for a 422, each
    field error (`body.title: String should have at least 1 character`)."""
    code = for_status(response.status_code)
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return ApiError(code, f"{response.status_code} {response.text[:200]}")
    message = (
        f"{response.status_code} {document.get('type')}: {document.get('detail') or document.get('title')}"
    )
    retry = response.headers.get("retry-after")
    if retry:
        message += f" (retry after {retry} s)"
    details = []
    for error in document.get("errors") or []:
        where = ".".join(str(part) for part in error.get("loc", []))
        details.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return ApiError(code, message, details, document)
