"""OpenAPI response documentation shared by the routes."""

from __future__ import annotations

from typing import Any

from coffeeshop.api.schemas import Problem, ValidationProblem

ETAG_HEADER = {
    "ETag": {
        "description": "Weak tag of the data version; send it back in If-None-Match.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"schema": {"type": "string"}},
}

DATA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": ETAG_HEADER},
    304: {"description": "Not modified: If-None-Match holds the current ETag.", "content": {}},
    401: {"model": Problem, "description": "Missing or wrong bearer token (when one is set)."},
    422: {"model": ValidationProblem, "description": "A bad query parameter: which and why."},
    503: {"model": Problem, "description": "The database cannot answer right now."},
}

# The table endpoints also answer CSV (`?format=csv` or `Accept: text/csv`).
TABLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **DATA_RESPONSES,
    200: {
        "headers": ETAG_HEADER,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "month,store_id,sales\r\n2026-11,3,1234.50\r\n",
            }
        },
    },
}
