"""Error responses: 422 names each bad parameter and why; a database that cannot answer is a
503 whose body says so without details (they go to the log, with the password hidden)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from coffeeshop.api.database import DatabaseUnavailable, SchemaMissing

log = logging.getLogger("coffeeshop.api")

MAX_ECHO = 100  # characters of a bad value echoed back
UNAVAILABLE = "the analysis database is unavailable; the server log says why"
NO_SCHEMA = "the analysis database has no coffeeshop tables yet; run `coffeeshop sync` first"


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(DatabaseUnavailable, _unavailable)


def bad_parameters(issues: Iterable[tuple[str, str, str, Any]]) -> RequestValidationError:
    """A 422 for query parameters: (name, error type, message, value given)."""
    return RequestValidationError(
        [
            {"loc": ("query", name), "type": kind, "msg": msg, "input": value}
            for name, kind, msg, value in issues
        ]
    )


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = [_issue(error) for error in exc.errors()]
    message = "; ".join(f"{_where(i['loc'])}: {i['msg']}" for i in issues)
    return JSONResponse({"message": message, "detail": issues}, status_code=422)


def _issue(error: dict[str, Any]) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
        "msg": str(error.get("msg", "invalid")).removeprefix("Value error, "),
        "type": str(error.get("type", "value_error")),
    }
    if "input" in error and error["input"] is not None:
        issue["input"] = _echo(error["input"])
    return issue


def _echo(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def _where(loc: Sequence[Any]) -> str:
    if len(loc) >= 2 and loc[0] == "query":
        return f"query parameter {'.'.join(str(p) for p in loc[1:])}"
    return ".".join(str(p) for p in loc) or "request"


def unavailable_detail(exc: DatabaseUnavailable) -> str:
    """What a client is told (the details, with the password hidden, go to the log)."""
    return NO_SCHEMA if isinstance(exc, SchemaMissing) else UNAVAILABLE


async def _unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabaseUnavailable)
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": unavailable_detail(exc)}, status_code=503, headers={"retry-after": "5"}
    )
