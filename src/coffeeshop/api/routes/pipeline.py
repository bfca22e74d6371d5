"""How current the tables are: the last committed batch and the lag, per source and in total."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from coffeeshop.api.deps import Api, only_known
from coffeeshop.api.params import Params
from coffeeshop.api.routes._docs import DATA_RESPONSES
from coffeeshop.api.schemas import PipelineStatus

router = APIRouter(tags=["pipeline"], responses=DATA_RESPONSES)


@router.get(
    "/pipeline",
    response_model=PipelineStatus,
    dependencies=[Depends(only_known(Params))],
    summary="Sync state: last batch, lag, counts, data version",
)
async def pipeline(request: Request, api: Api) -> Response:
    """As of the last read of the database (every COFFEESHOP_API_REFRESH seconds, `checked_at`);
    the seconds since the last commit count up to now. Its ETag follows the content."""
    return api.uncached(request, api.pipeline_status())
