"""Text the `coffeeshop` command prints: receipt content made safe for a terminal, and hints
completed with the database and source the user gave, so that copying them acts on the same
data (registered by `coffeeshop.cli`; no heavy imports here)."""

from __future__ import annotations

import logging
import re


def printable(text: str, *, keep: str = "") -> str:
    """`text` with every control character escaped (`\\x1b`, `\\n`, `\\u2028`, …) but those
    in `keep`: receipt content and file names must not retitle the terminal, write to its
    clipboard or move the cursor."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in keep else c.encode("unicode_escape").decode() for c in text
    )


class Hints:
    """The `--db`/`--source` of this command, added to the commands a message suggests."""

    def __init__(self) -> None:
        self.db: str | None = None  # shown with its password masked
        self.source: str | None = None

    def complete(self, text: str) -> str:
        if self.db is None or "`coffeeshop " not in text:
            return text
        db = f" --db {_quote(self.db)}"
        source = f" --source {_quote(self.source)}" if self.source else ""
        text = text.replace("`coffeeshop quarantine`", f"`coffeeshop quarantine{db}`")
        for command in ("reconcile --repair", "reconcile"):
            text = re.sub(rf"`coffeeshop {command}`", f"`coffeeshop {command}{source}{db}`", text)
        return text


def _quote(value: str) -> str:
    return (
        value
        if re.fullmatch(r"[\w@%+=:,./*-]+", value)
        else "'" + value.replace("'", "'\\''") + "'"
    )


class HintFilter(logging.Filter):
    """Completes the hints in coffeeshop's log lines (the engine does not know the options)."""

    def __init__(self, hints: Hints) -> None:
        super().__init__()
        self.hints = hints

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("coffeeshop") and "`coffeeshop " in str(record.msg):
            record.msg = self.hints.complete(record.getMessage())
            record.args = None
        return True


class PrintableFilter(logging.Filter):
    """Escapes control characters in every log line (`printable`): a file name, a source name
    or receipt content quoted in a message never reaches the terminal raw, and a line stays one
    line. A record logged with `extra={"verbatim": True}` (a traceback) keeps its newlines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.isprintable():
            record.msg = printable(message, keep="\n" if getattr(record, "verbatim", False) else "")
            record.args = None
        return True


HINTS = Hints()
