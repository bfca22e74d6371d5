"""Sources of receipt changes: each yields batches of events with a resume position."""
