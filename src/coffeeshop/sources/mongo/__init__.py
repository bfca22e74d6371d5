"""The MongoDB source, one unit per concern (as Debezium's connector splits them):

- `source`: `MongoSource`, the `Source` the engine reads: picks streaming or polling at
  start, and runs the snapshot, then the stream (or the poll loop);
- `connection`: `MongoConnection`, the source's options and its start-up calls (the client,
  `hello`, the namespace, the stream's start token), retried with the source's backoff;
- `snapshot`: the collection read in `_id` order, resumable after the last `_id` read;
- `stream`: the change stream from a resume token, resumed after failures;
- `poll`: polling a standalone server (no change streams);
- `position`: the checkpoint text (snapshot / stream / poll positions);
- `codec`: how BSON is decoded (every value MongoDB can store: dates outside years 1-9999,
  strings that are not UTF-8);
- `history`: which history a checkpoint belongs to (collection UUID, replica set), and
  whether the namespace exists;
- `errors`: which server errors are retryable or mean the history is lost; waits a stop
  request ends; one-line descriptions;
- `write`: the generator's MongoDB target (`coffeeshop generate --to mongodb://…`).
"""

from coffeeshop.sources.mongo.source import MongoSource
from coffeeshop.sources.mongo.write import write_lines

__all__ = ["MongoSource", "write_lines"]
