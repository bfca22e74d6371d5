"""Pure core: receipts, change events, the batch plan, partial aggregates and the
independent recompute. Imports no database, web, orchestration or CLI code."""
