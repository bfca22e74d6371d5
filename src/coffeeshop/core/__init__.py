"""Pure core: receipts, change events, the batch plan, partial aggregates and the
independent recompute. Imports no database, web, orchestration or CLI code; only `bson`, the
pure BSON value types and Extended JSON codec a receipt's values can be (see the import
contract in pyproject.toml)."""
