"""Liveness and readiness probes; open even when a token protects the data."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from coffeeshop.api.database import DatabaseUnavailable
from coffeeshop.api.deps import Api
from coffeeshop.api.errors import unavailable_detail
from coffeeshop.api.queries import read_tag
from coffeeshop.api.schemas import Health, NotReady, Ready

log = logging.getLogger("coffeeshop.api")

router = APIRouter(tags=["health"])

_HEALTH = b'{"status":"ok"}'


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Response:
    """Never touches the database."""
    return Response(_HEALTH, media_type="application/json")


@router.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": NotReady, "description": "The database cannot answer."}},
    summary="Readiness: the database answers and has the coffeeshop tables",
)
async def ready(api: Api) -> Response:
    try:
        tag = await api.database.read(read_tag)
    except DatabaseUnavailable as exc:
        log.warning("not ready: %s", exc)
        return JSONResponse(
            {"status": "unavailable", "detail": unavailable_detail(exc)}, status_code=503
        )
    return JSONResponse({"status": "ready", "data_version": tag.data_version})
