"""`newsletter serve`: the WSGI application on waitress, until Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..config import Config
from ..errors import listening
from .app import create_app


def run_server(config: Config, clock: Callable[[], datetime], host: str, port: int,
               log: Callable[[str], None]) -> None:
    import waitress

    application = create_app(config, clock)
    with listening(host, port):
        server = waitress.create_server(application, host=host, port=port, threads=4,
                                        ident="newsletter")
    log(f"serving unsubscribe on http://{host}:{port}/unsubscribe (Ctrl-C stops)")
    try:
        server.run()
    except KeyboardInterrupt:
        log("serve stopped")
