"""The read-only REST API over the analytics tables: `create_app(settings)` builds it,
`coffeeshop serve` runs it."""

from coffeeshop.api.app import create_app
from coffeeshop.api.settings import ApiSettings, load_api_settings

__all__ = ["ApiSettings", "create_app", "load_api_settings"]
