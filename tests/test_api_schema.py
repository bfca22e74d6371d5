"""Schemathesis over the published OpenAPI document: generated requests (valid and invalid)
never get a 5xx, and every response conforms to the schema (status, content type, body,
headers). Bounded: a few dozen examples per operation, well under a minute.

The schema comes from `app.openapi()` of an app with the same configuration (no database
needed to publish it); the requests go to an app over a database filled by the engine.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import HttpBearerAuthConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from test_api_support import fill
from test_api_support import settings as api_settings

from coffeeshop.api import create_app

EXAMPLES = 40
TOKEN = "schema-test-token"
BASE_URL = "http://localhost"
LIMITS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class Deferred:
    """An ASGI app that forwards to the one a fixture sets: the schema is loaded at import (for
    `parametrize`), the app over a filled database only exists once the fixture runs. It
    counts the statuses answered per path, as the client saw them (not through the app's
    metrics, whose state is the process's)."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None
        self.answered: Counter[tuple[str, int]] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the app fixture has not run"
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.answered[scope["path"], message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting)


def published(token: str | None) -> tuple[Any, Deferred]:
    app = create_app(api_settings("sqlite:///never-opened.db", api_token=token))
    # /events streams without end (tests/test_api_events.py covers it): a generated call
    # would wait for a body that never finishes.
    schema = schemathesis.openapi.from_dict(app.openapi()).exclude(path="/events")
    schema.app = target = Deferred()
    if token:  # schemathesis sends it, and knows which requests are meant to lack it
        schema.config.auth.openapi.schemes["HTTPBearer"] = HttpBearerAuthConfig(bearer=token)
    return schema, target


open_schema, open_target = published(None)
token_schema, token_target = published(TOKEN)


@contextlib.contextmanager
def serving(directory: Path, target: Deferred, token: str | None) -> Iterator[None]:
    url = f"sqlite:///{directory / 'analysis.db'}"
    fill(url, directory)
    target.app = create_app(api_settings(url, api_token=token))
    yield
    from schemathesis.python import asgi  # stop the lifespans its client started

    with contextlib.suppress(Exception):
        asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def open_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with serving(tmp_path_factory.mktemp("schema_open"), open_target, None):
        yield


@pytest.fixture(scope="module")
def token_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with serving(tmp_path_factory.mktemp("schema_token"), token_target, TOKEN):
        yield


def call_and_validate(case: Any) -> None:
    """Every check, with one rule OpenAPI cannot state: a range whose start is after its end
    (`month_from=9944-04&month_to=0088-10`) is schema-valid yet answered 422. A valid request
    may be refused for that reason and no other."""
    response = case.call_and_validate(base_url=BASE_URL, excluded_checks=[positive_data_acceptance])
    if case.meta is not None and case.meta.generation.mode.is_positive:
        if response.status_code == 422:
            assert " is after " in response.json()["message"], response.text
        else:
            assert response.status_code < 400 or response.status_code in (401, 403, 404)


@open_schema.parametrize()
@LIMITS
def test_every_response_conforms_and_none_is_a_server_error(case: Any, open_app: None) -> None:
    call_and_validate(case)


@token_schema.parametrize()
@LIMITS
def test_with_a_token_too(case: Any, token_app: None) -> None:
    call_and_validate(case)


@pytest.mark.parametrize("target", [open_target, token_target], ids=["open", "token"])
def test_the_generated_runs_reached_the_data(target: Deferred) -> None:
    """Last in the module, after every generated case (a module runs whole in one process,
    and in file order): with a token, a 401 for everything would conform too. Checked here,
    not when the app fixture ends: pytest may end a module's fixture between its tests and
    start it again (it did under xdist, before /store_monthly's cases had run)."""
    answered = target.answered.items()
    monthly = {status: n for (path, status), n in answered if path == "/store_monthly"}
    assert monthly.get(200, 0) > 0, (
        f"/store_monthly answered {monthly} (run the whole module: its cases come first)"
    )
