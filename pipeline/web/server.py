"""`newsletter serve`: the WSGI application on waitress, until Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..config import Config
from ..delivery.signup import prepare_signup_mail
from ..errors import listening
from .app import create_app, served_paths

# Idle or slow connections (slowloris) must not keep a reader out: many may wait, none
# for long, and nothing large is read. The app limits request bodies again, per route.
LIMITS = {"threads": 4, "connection_limit": 1000, "channel_timeout": 15,
          "cleanup_interval": 5, "max_request_header_size": 16 * 1024,
          "max_request_body_size": 2 * 1024 * 1024}  # the webhook's 1 MB, and then 413


def run_server(config: Config, clock: Callable[[], datetime], host: str, port: int,
               log: Callable[[str], None]) -> None:
    import waitress

    # the confirmation and the welcome are rendered now: a mistake in them stops serve
    # with its path and line, before anyone signs up
    application = create_app(config, clock, log=log, signup_mail=prepare_signup_mail(config))
    with listening(host, port):
        server = waitress.create_server(application, host=host, port=port, ident="newsletter",
                                        **LIMITS)
    base = f"http://{host}:{port}"
    log(f"serving on {base}: " + "; ".join(
        f"{name} {', '.join(base + path for path in paths)}"
        for name, paths in served_paths(config).items()) + " (Ctrl-C stops)")
    try:
        server.run()
    except KeyboardInterrupt:
        log("serve stopped")
