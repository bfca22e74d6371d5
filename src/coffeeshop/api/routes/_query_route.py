"""An endpoint that is one query over its parameters, declared as data and registered on a
router: its path, row model, parameters, query, summary and description. The tables, the
ranges and the insights are all written this way, so caching, ETag, CSV, 422 and auth are the
same for each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from coffeeshop.api.deps import Api, only_known
from coffeeshop.api.params import Params


@dataclass(frozen=True, slots=True)
class QueryRoute:
    """An endpoint that is one query over its parameters (cached under them)."""

    path: str
    model: type[BaseModel]
    params: type[Params]
    query: Callable[..., Awaitable[Any]]
    summary: str
    doc: str
    dated: bool = False  # the query also takes today's date (local, COFFEESHOP_TIMEZONE)


def register(router: APIRouter, route: QueryRoute) -> None:
    """Add `route` to `router` as a GET of a list of `route.model` rows."""
    name = route.path.removeprefix("/")

    async def endpoint(params: Any, request: Request, api: Api) -> Response:
        if not route.dated:
            return await api.query(request, name, route.query, params)
        today = dt.datetime.now(api.settings.zone()).date()
        return await api.cached(
            request,
            (name, params.key()),
            lambda conn: route.query(conn, params, today),
            variant=today.isoformat(),
            alias=False,  # "today" moves on: never answer it from the fast path
        )

    endpoint.__name__ = name
    endpoint.__doc__ = route.doc
    # the parameters' model is known only here: FastAPI reads it from the annotations
    endpoint.__annotations__ = {
        "params": Annotated[route.params, Query()],
        "request": Request,
        "api": Api,
        "return": Response,
    }
    router.get(
        route.path,
        response_model=list[route.model],  # type: ignore[name-defined]
        dependencies=[Depends(only_known(route.params))],
        summary=route.summary,
    )(endpoint)


def document(
    router: APIRouter, path: str, model: type[BaseModel], summary: str
) -> Callable[[Callable[[Api], Any]], Callable[[Api], Any]]:
    """Register the decorated `body(api)` as a GET of one uncached `model` document that takes
    no parameters (its ETag follows the content); its name and docstring are the endpoint's."""

    def register_body(body: Callable[[Api], Any]) -> Callable[[Api], Any]:
        async def endpoint(request: Request, api: Api) -> Response:
            return api.uncached(request, body(api))

        endpoint.__name__ = body.__name__
        endpoint.__doc__ = body.__doc__
        router.get(
            path,
            response_model=model,
            dependencies=[Depends(only_known(Params))],
            summary=summary,
        )(endpoint)
        return body

    return register_body
