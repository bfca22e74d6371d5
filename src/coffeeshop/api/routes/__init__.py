"""One router per concern: the four tables, the quarantine, the pipeline, health, metrics."""
