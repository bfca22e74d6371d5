"""The sync pipeline: read ahead, apply batches, rebuild; reconcile (single process and
merged from partitions)."""
