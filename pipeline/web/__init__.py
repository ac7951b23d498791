"""The HTTP application of `newsletter serve`: unsubscribe today; signup and provider
webhooks later."""

from .app import create_app

__all__ = ["create_app"]
