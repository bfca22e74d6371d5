"""Prometheus metrics in the text exposition format (OpenMetrics when asked for)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from coffeeshop.api.database import DatabaseUnavailable
from coffeeshop.api.deps import Api
from coffeeshop.api.schemas import Problem

log = logging.getLogger("coffeeshop.api")

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Request counts and latency per route, cache use, and the pipeline's "
            "data version, totals and freshness.",
        },
        401: {"model": Problem, "description": "Missing or wrong bearer token (when one is set)."},
    },
    summary="Prometheus metrics",
)
async def metrics(request: Request, api: Api) -> Response:
    try:
        status = api.pipeline_status()
    except DatabaseUnavailable as exc:
        log.warning("metrics without the pipeline's state: %s", exc)
        status = None
    body, content_type = api.metrics.render(status, accept=request.headers.get("accept"))
    return Response(body, media_type=content_type)
