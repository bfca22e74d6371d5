"""The demo: realistic receipt traffic and the one-command demo."""
