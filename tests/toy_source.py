"""A toy source kind, registered the way a real one is (`coffeeshop.sources.register`):
`toy:///DIR` names a directory of change files, `0001.json`, `0002.json`, …, each one
document or change event; the position is the number of files read. It has no
`Partitioned` capability: whole-history work in partitions must refuse it in one line.

Imported by `tests/test_source_registry.py`, and by the commands it runs (`python -c
"import toy_source; …"`), as a plugin that registers its kind before the CLI starts."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

from coffeeshop.core.events import event_from_object
from coffeeshop.errors import ConfigError
from coffeeshop.retry import StopSignal
from coffeeshop.sources import SourceKind, SourceOptions, register
from coffeeshop.sources.base import BatchLimits, Source, SourceBatch
from coffeeshop.sources.batching import MicroBatch

SCHEME = "toy"


class ToySource:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._next = 0

    @property
    def name(self) -> str:
        return f"toy:{self.directory}"

    @property
    def spec(self) -> str:
        return f"{SCHEME}://{self.directory}"

    @property
    def repair_args(self) -> str:
        return f"--source {shlex.quote(self.spec)}"

    def open(self, position: str | None) -> None:
        self._next = 0 if position is None else int(json.loads(position)["next"])

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.json"))

    def batches(
        self, limits: BatchLimits, *, follow: bool, stop: StopSignal
    ) -> Iterator[SourceBatch]:
        batch = MicroBatch(limits)
        files = self._files()
        while not stop.is_set() and self._next < len(files):
            path = files[self._next]
            text = path.read_text(encoding="utf-8")
            obj = json.loads(text, parse_float=Decimal)
            self._next += 1
            if batch.add(event_from_object(obj, where=path.name, raw=text)):
                yield SourceBatch(batch.take(), self._position())
        if batch:
            yield SourceBatch(batch.take(), self._position())

    def _position(self) -> str:
        return json.dumps({"next": self._next})

    def close(self) -> None:
        pass


def open_toy(spec: str, _options: SourceOptions) -> Source:
    directory = Path(spec.removeprefix(f"{SCHEME}://"))
    if not directory.is_dir():
        raise ConfigError(f"toy source {directory} is not a directory")
    return ToySource(directory)


def write_changes(directory: Path, objects: Sequence[object]) -> None:
    """Append each object as the next change file."""
    directory.mkdir(exist_ok=True)
    start = len(list(directory.glob("*.json")))
    for i, obj in enumerate(objects, start + 1):
        (directory / f"{i:04d}.json").write_text(json.dumps(obj), encoding="utf-8")


TOY = register(SourceKind("toy", open_toy, schemes=(SCHEME,)))


def main() -> None:
    """`coffeeshop ARGS` with the toy kind registered (`python -m toy_source ARGS`)."""
    from coffeeshop.cli.app import main as coffeeshop

    sys.argv[0] = "coffeeshop"
    coffeeshop()


if __name__ == "__main__":
    main()
