"""Dependencies of the routes, as `Annotated` aliases: the app's state, the token check, and
each endpoint's query parameters (unknown or repeated parameters are a 422)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.exceptions import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from coffeeshop.api.errors import bad_parameters
from coffeeshop.api.params import (
    ItemParams,
    Params,
    QuarantineParams,
    StoreMonthlyParams,
    StoreParams,
    SummaryParams,
)
from coffeeshop.api.state import ApiState


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


Api = Annotated[ApiState, Depends(get_state)]

MAX_NAME = 100  # characters of an unknown parameter's name echoed back
MAX_ISSUES = 20

_bearer = HTTPBearer(auto_error=False, description="The value of COFFEESHOP_API_TOKEN.")


async def require_token(
    api: Api,
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """401 unless the request carries the configured bearer token."""
    if not api.auth.accepts(request.headers.get("authorization")):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong bearer token (send Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def only_known(model: type[Params]) -> Callable[[Request], Awaitable[None]]:
    """A dependency that rejects query parameters `model` does not define, or gives twice."""
    allowed = tuple(model.model_fields)

    async def check(request: Request) -> None:
        counts = Counter(name for name, _ in request.query_params.multi_items())
        issues = [
            (
                name[:MAX_NAME],
                "unknown_parameter",
                f"unknown parameter (this endpoint takes: {', '.join(allowed)})",
                None,
            )
            for name in counts
            if name not in allowed
        ]
        issues += [
            (name, "repeated_parameter", f"given {n} times; give it once", None)
            for name, n in counts.items()
            if n > 1 and name in allowed
        ]
        if issues:
            raise bad_parameters(issues[:MAX_ISSUES])

    return check


SummaryQuery = Annotated[SummaryParams, Query()]
StoreMonthlyQuery = Annotated[StoreMonthlyParams, Query()]
ItemQuery = Annotated[ItemParams, Query()]
StoreQuery = Annotated[StoreParams, Query()]
QuarantineQuery = Annotated[QuarantineParams, Query()]
