"""The buckets of a partitioned read, kept on the Dask workers: the coordinator holds per-bucket
summaries, never the receipts.

After the `read-range` tasks (Prefect tasks: retried, visible in the UI) every range's output
stays on the worker that read it, as [its summary, its shard for bucket 0, for bucket 1, …,
its unreadable input's quarantine entries in chunks], each pickled. Then, as plain Dask
tasks (their results are bytes, whose size Dask sees, so it can spill them):

1. one *piece* per (range, bucket): the range's shard for that bucket, taken where the range
   lives (the same bytes object: no copy);
2. one *bucket* per bucket: its pieces of every range (only those move between workers), last
   write wins, the bucket's `Partial` and its rows sorted by key, cut into chunks of `CHUNK`
   rows, its sums of the windowed counted tables, one element per (table, day)
   (`pipeline.windows.split`), and its quarantine entries (invalid receipts, by key) cut
   into chunks of `QUEUED_CHUNK`: [summary, chunk 0, chunk 1, …, day sums, …, quarantine
   chunks, …], kept on its worker;
3. the coordinator fetches the buckets' summaries (the small sums, the number of chunks,
   of quarantine entries, the keys per (table, day)) and the ranges' heads (their line
   counts, the number of unreadable lines), keeps each range's quarantine chunks where they
   are (one small task per range), then drops the ranges and pieces: each worker holds its
   share of the buckets, whatever the number of workers.

The comparison with `cs_receipts` and a rebuild read the rows as one key-ordered stream,
merged from every bucket's `Chunks`, which fetches its chunks one after the other (the
next one requested while the current one is consumed): the coordinator holds about two chunks
per bucket at a time, whatever the history. The quarantine entries a rebuild writes come the
same way (`pipeline.partitioned.Quarantine`): the coordinator counts them, never holds them.
The counted sums come a window of days at a time (`pipeline.windows.Windows`: one `_pick`
task per bucket and window). Each pass reads the chunks and the windows again from the
workers.
A worker lost meanwhile: Dask computes its buckets again from their inputs.
"""

from __future__ import annotations

import operator
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from distributed import Client, Future

from coffeeshop.core.groups import Sums
from coffeeshop.core.partials import BucketResult, Partial, Queued, resolve, unkeyed_partial
from coffeeshop.pipeline.partitioned import Quarantine
from coffeeshop.pipeline.windows import Piece, Windows, split
from coffeeshop.sources.partitions import RangeOutput

CHUNK = 4096  # rows per chunk a bucket is fetched in
QUEUED_CHUNK = 256  # quarantine entries per chunk (each holds its raw input: up to ~64 KiB)
AHEAD = 1  # chunks requested ahead of the one consumed, per bucket
_PICKLE = pickle.HIGHEST_PROTOCOL


def _chunked(items: list[Any], size: int) -> list[bytes]:
    return [pickle.dumps(items[i : i + size], _PICKLE) for i in range(0, len(items), size)]


def pickled(output: RangeOutput) -> list[bytes]:
    """[the range's summary (without candidates, its unreadable input counted), its shard for
    bucket 0, for bucket 1, …, its unreadable input as quarantine entries, chunk by chunk]."""
    head = RangeOutput([], [], output.lines, output.end, output.open_line)
    queued = _chunked(unkeyed_partial(output.unkeyed).quarantine, QUEUED_CHUNK)
    shards = [pickle.dumps(s, _PICKLE) for s in output.shards]
    return [pickle.dumps((head, len(output.unkeyed)), _PICKLE), *shards, *queued]


@dataclass(slots=True)
class BucketSummary:
    partial: Partial  # without the windowed counted tables' sums (in `windows`) and its
    # quarantine entries (after its day sums, `queued_chunks` chunks of `QUEUED_CHUNK`)
    chunks: int
    pieces: list[tuple[Piece, int]]  # its windowed sums per (group, day), after its chunks,
    # with their number of keys
    queued: int  # its quarantine entries
    queued_chunks: int


def failed(state: Any) -> bool:
    """Whether a Prefect task's result (a `State` on Dask) is not a completed one, where it
    lives: only the answer travels."""
    return hasattr(state, "is_completed") and not state.is_completed()


def _element(state: Any, index: int) -> bytes:
    """Element `index` of a Prefect task's result (a `State` on Dask), where it lives."""
    result = state.result(raise_on_failure=True, _sync=True) if hasattr(state, "result") else state
    return result[index]


def _tail(state: Any, start: int) -> list[bytes]:
    """The elements of a Prefect task's result from `start` on, where it lives."""
    result = state.result(raise_on_failure=True, _sync=True) if hasattr(state, "result") else state
    return list(result[start:])


def _resolve(*shards: bytes) -> list[bytes]:
    """One bucket from its shard of every range: [summary, chunk 0, chunk 1, …, its windowed
    sums of one (group, day), of the next, …, its quarantine entries' chunks], pickled."""
    result = resolve(pickle.loads(shard) for shard in shards)
    rows = result.rows
    assert isinstance(rows, list)
    chunks = _chunked(rows, CHUNK)
    pieces = split(result.partial)
    queued = _chunked(result.partial.quarantine, QUEUED_CHUNK)
    count = len(result.partial.quarantine)
    result.partial.quarantine = []
    pairs = [(p, len(s)) for p, s in pieces.items()]
    summary = BucketSummary(result.partial, len(chunks), pairs, count, len(queued))
    sums = [pickle.dumps(piece, _PICKLE) for piece in pieces.values()]
    return [pickle.dumps(summary, _PICKLE), *chunks, *sums, *queued]


class Chunks:
    """Elements [`first`, `first` + `count`) of a list a future holds on the cluster, each a
    pickled list (a bucket's rows sorted by key, its quarantine entries), fetched chunk by
    chunk from the worker that holds them and read as one stream; iterable any number of
    times."""

    def __init__(self, client: Client, held: Future, first: int, count: int) -> None:
        self._client = client
        self._held = held
        self._first = first
        self._count = count

    def _fetch(self, index: int) -> Future:
        return self._client.submit(operator.getitem, self._held, self._first + index, pure=False)

    def __iter__(self) -> Iterator[Any]:
        requested = 0
        pending: deque[Future] = deque()
        while requested < self._count and len(pending) <= AHEAD:
            pending.append(self._fetch(requested))
            requested += 1
        while pending:
            data = pending.popleft().result()
            if requested < self._count:
                pending.append(self._fetch(requested))
                requested += 1
            yield from pickle.loads(data)


def _pick(bucket: list[bytes], elements: list[int]) -> list[bytes]:
    return [bucket[i] for i in elements]


def _fetcher(client: Client) -> Callable[[Future, list[int]], list[Sums]]:
    """A bucket's pieces of one window (elements of its result), in one task where it lives."""

    def fetch(bucket: Future, elements: list[int]) -> list[Sums]:
        data = client.submit(_pick, bucket, elements, pure=False).result()
        return [pickle.loads(piece) for piece in data]

    return fetch


def resolve_on_cluster(
    client: Client, ranges: list[Any], buckets: int
) -> tuple[list[RangeOutput], list[BucketResult], Windows, Quarantine]:
    """The ranges' heads, every bucket as a `BucketResult` whose rows stay on the cluster, the
    windows of their windowed counted tables and the quarantine entries, which stay there
    too. `ranges`: each range's Dask future (holding its `pickled` output, in a Prefect
    state), emptied here: the caller holds none, so a range's output is freed once its
    pieces, head and tail are taken, and a piece once its bucket is resolved."""
    pieces = [
        [client.submit(_element, r, b + 1, pure=False) for b in range(buckets)] for r in ranges
    ]
    heads = [client.submit(_element, r, 0, pure=False) for r in ranges]
    unreadable = [client.submit(_tail, r, buckets + 1, pure=False) for r in ranges]
    ranges.clear()
    resolved = [
        client.submit(_resolve, *[piece[b] for piece in pieces], pure=False) for b in range(buckets)
    ]
    del pieces
    summaries = [client.submit(operator.getitem, b, 0, pure=False) for b in resolved]
    head_bytes = client.gather(heads)
    summary_bytes = client.gather(summaries)
    del heads, summaries
    results: list[BucketResult] = []
    windows = Windows(_fetcher(client))
    runs: list[Iterable[Queued]] = []
    count = 0
    for future, data in zip(resolved, summary_bytes, strict=True):
        summary: BucketSummary = pickle.loads(data)
        results.append(BucketResult(summary.partial, Chunks(client, future, 1, summary.chunks)))
        for i, (piece, keys) in enumerate(summary.pieces):
            windows.add(piece, future, 1 + summary.chunks + i, keys)
        first = 1 + summary.chunks + len(summary.pieces)
        runs.append(Chunks(client, future, first, summary.queued_chunks))
        count += summary.queued
    heads_read: list[RangeOutput] = []
    for tail, data in zip(unreadable, head_bytes, strict=True):
        head, unkeyed = pickle.loads(data)
        heads_read.append(head)
        if unkeyed:  # else its (empty) future is released here
            runs.append(Chunks(client, tail, 0, -(-unkeyed // QUEUED_CHUNK)))
            count += unkeyed
    return heads_read, results, windows, Quarantine(runs, count)
