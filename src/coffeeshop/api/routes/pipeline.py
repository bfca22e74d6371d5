"""How current the tables are: the last committed batch and the lag, per source and in total."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from coffeeshop.api.deps import Api
from coffeeshop.api.routes._docs import DATA_RESPONSES
from coffeeshop.api.routes._query_route import document
from coffeeshop.api.schemas import PipelineStatus

router = APIRouter(tags=["pipeline"], responses=DATA_RESPONSES)


@document(router, "/pipeline", PipelineStatus, "Sync state: last batch, lag, counts, data version")
def pipeline(api: Api) -> Any:
    """As of the last read of the database (every COFFEESHOP_API_REFRESH seconds, `checked_at`);
    the seconds since the last commit count up to now. Its ETag follows the content."""
    return api.pipeline_status()
