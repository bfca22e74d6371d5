"""Options shared by the `coffeeshop` commands (their names, help and environment)."""

from __future__ import annotations

from typing import Annotated, Any

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
        help="A JSONL file, or a source URI such as mongodb://… or mongodb+srv://… "
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
WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        max=86_400,
        help="Seconds to wait for another writer to finish before giving up.",
    ),
]
FollowOption = Annotated[
    bool,
    typer.Option("--follow", help="Keep following the source for new receipts until Ctrl-C."),
]


def located(
    source: str | None = None,
    db: str | None = None,
    database: str | None = None,
    collection: str | None = None,
) -> dict[str, Any]:
    """The settings the options above override, under their names in `Settings`
    (`--database` is `mongo_database`, `--collection` is `mongo_collection`)."""
    return {
        "source": source,
        "db": db,
        "mongo_database": database,
        "mongo_collection": collection,
    }
