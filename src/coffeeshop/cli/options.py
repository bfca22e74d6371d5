"""Options shared by the `coffeeshop` commands (their names, help and environment)."""

from __future__ import annotations

from typing import Annotated

import typer

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of the analysis database [env: SQL_DSN, COFFEESHOP_DB; default sqlite:///analysis.db]",
        show_default=False,
    ),
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="A JSONL file, or a mongodb:// or mongodb+srv:// URI "
        "[env: COFFEESHOP_SOURCE, MONGO_URI]",
        show_default=False,
    ),
]
MongoDatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="MongoDB database [env: COFFEESHOP_MONGO_DATABASE; default coffeeshop]",
        show_default=False,
    ),
]
MongoCollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="MongoDB collection [env: COFFEESHOP_MONGO_COLLECTION; default receipt]",
        show_default=False,
    ),
]
