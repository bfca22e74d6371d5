"""One router per concern: the public tables (`tables`), receipts per store and hour
(`store_hours`), the owner's view (`insights`), ranges of days and hours over the counted
tables (`ranges`), the quarantine, the pipeline, the pushed data version (`events`), health
and metrics; `_docs` holds the response documentation they share, `_query_route` the one way a
table query becomes an endpoint. `api/app.py` includes them."""
