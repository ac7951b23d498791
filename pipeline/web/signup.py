"""Signup with double opt-in: the routes behind [signup] url and the confirmation link.

- GET  /subscribe   the form.
- POST /subscribe   a form (application/x-www-form-urlencoded: the archive's) or JSON
  (``{"email": …, "name": …, "language": …}``: a site's own form). An optional
  ``language`` (the archive's edition pages send theirs) becomes the reader's on
  confirmation; one that is not a language tag is ignored, with the same answer. It keeps the signup with its consent
  record and mails a confirmation link; the audience is not touched. The answer is the
  same whether the address is a reader, one who left or unknown (no enumeration). A
  filled honeypot field (``website``) gets that answer too, and nothing is sent. Over
  [signup] per_client requests from one client address, or per_email confirmation mails
  to one address, in [signup] window: 429 with Retry-After.
- GET  /confirm?token=…  a page with a button: link scanners and prefetchers follow
  GETs, and they must not subscribe anyone.
- POST /confirm?token=…  the reader is active with their consent, and gets the welcome
  (``delivery.signup``). Following it again changes nothing. A forged, altered or
  expired token: 400, the "not valid" page, and nothing changes (the MAC and the expiry
  are checked before the database is opened).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime

from ..audience.queries import Subscriber
from ..audience.signup import signup_language, signup_problem
from ..audience.tokens import TokenError, signer_for
from ..config import Config
from ..delivery.providers import Provider
from ..delivery.signup import (
    SignupMail,
    SignupRequest,
    confirm,
    prepare_signup_mail,
    send_confirmation,
)
from ..errors import PipelineError
from ..render import template_env
from ..render.templates import base_context
from ..store import connect
from .limits import RateLimit
from .routing import Request, Response

HONEYPOT = "website"
_SOURCE = re.compile(r"[a-z0-9_-]{1,32}")


class Signups:
    """The signup routes of one `serve` process, with its rate limits and its mail
    (rendered once: given, or on the first signup)."""

    def __init__(self, config: Config, clock: Callable[[], datetime],
                 new_provider: Callable[[], Provider], log: Callable[[str], None],
                 mail: SignupMail | None = None):
        self.config, self.clock, self.new_provider, self.log = config, clock, new_provider, log
        self.signer = signer_for(config)
        self.template = template_env(config).get_template("web/signup.html.j2")
        settings = config.signup
        self.per_client = RateLimit(settings.per_client, settings.window)
        self.per_email = RateLimit(settings.per_email, settings.window)
        self._mail, self._lock = mail, threading.Lock()

    @property
    def mail(self) -> SignupMail:
        with self._lock:
            if self._mail is None:
                self._mail = prepare_signup_mail(self.config)
            return self._mail

    def page(self, status: int, state: str, email: str = "", token: str = "",
             retry: int | None = None) -> Response:
        body = self.template.render(**base_context(self.config), state=state, email=email,
                                    token=token, subscribe_url=self.config.subscribe_url,
                                    source="web")
        headers = (("Retry-After", str(retry)),) if retry else ()
        return Response(status, body.encode("utf-8"), headers=headers)

    # --- POST /subscribe ------------------------------------------------------------

    def subscribe(self, request: Request) -> Response:
        if request.method != "POST":
            return self.page(200, "form")
        as_json = request.content_type == "application/json"
        fields = _json_fields(request.body) if as_json else \
            {k: v[0] for k, v in request.form.items() if v}
        if fields is None:
            return _json(400, {"ok": False, "error": "the body is not a JSON object"})
        answer = _json_answer if as_json else _page_answer
        wait = self.per_client.hit(request.client, self.clock())
        if wait:
            return answer(self, 429, "too_many", "", wait)
        email, name = (str(fields.get(k) or "").strip() for k in ("email", "name"))
        if fields.get(HONEYPOT):  # a bot: answered as anyone is, nothing sent
            return answer(self, 200, "sent", email)
        if signup_problem(email, name):
            return answer(self, 400, "not_an_address", "")
        source = str(fields.get("source") or "")
        source = source if _SOURCE.fullmatch(source) else "api" if as_json else "web"
        return self.request_confirmation(request, email, name, source, answer,
                                         fields.get("language"))

    def request_confirmation(self, request: Request, email: str, name: str, source: str,
                             answer=None, language: object = None) -> Response:
        """Mail a confirmation link to ``email``; the same answer whatever the address
        is, unless it asked for too many."""
        answer = answer or _page_answer
        now = self.clock()
        wait = self.per_email.hit(email.lower(), now)
        if wait:
            return answer(self, 429, "too_many", "", wait)
        db = connect(self.config.database)
        try:
            outcome = send_confirmation(self.config, db, self.mail, self.new_provider(),
                                        SignupRequest(email, name, source, request.client,
                                                      request.agent,
                                                      signup_language(language)), now)
            if outcome.status != "sent":
                self.log(f"signup: the confirmation was not sent ({outcome.status}: "
                         f"{outcome.error})")
        except PipelineError as exc:  # the provider refused or stopped: said in the log
            self.log(f"signup: the confirmation was not sent: {exc.format_message()}")
        finally:
            db.close()
        return answer(self, 200, "sent", email)

    # --- /confirm ---------------------------------------------------------------------

    def confirm(self, request: Request) -> Response:
        token = request.value("token")
        now = self.clock()
        try:
            ref = self.signer.verify_confirmation(token, now)  # before the database opens
        except TokenError:
            return self.page(400, "invalid")
        db = connect(self.config.database)
        try:
            if request.method != "POST":
                row = db.execute("SELECT email FROM signups WHERE ref = ?", (ref,)).fetchone()
                return self.page(200, "ask", row["email"], token) if row else \
                    self.page(400, "invalid")
            confirmed = confirm(self.config, db, ref, self.mail, self.new_provider, now,
                                self.log)
        finally:
            db.close()
        if confirmed is None:
            return self.page(400, "invalid")
        return self.page(200, "confirmed", confirmed.email)

    # --- the unsubscribe page's "subscribe again" -------------------------------------

    def resubscribe(self, request: Request, reader: Subscriber) -> Response:
        """A reader who left asks to come back: a new confirmation, as for anyone."""
        return self.request_confirmation(request, reader.email, reader.name, "resubscribe")


def _json_fields(body: str) -> dict | None:
    try:
        fields = json.loads(body)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


def _json(status: int, payload: dict, retry: int | None = None) -> Response:
    headers = (("Retry-After", str(retry)),) if retry else ()
    return Response(status, json.dumps(payload).encode("utf-8"), "application/json",
                    headers)


def _page_answer(signups: Signups, status: int, state: str, email: str,
                 retry: int | None = None) -> Response:
    return signups.page(status, state, email, retry=retry)


def _json_answer(signups: Signups, status: int, state: str, email: str,
                 retry: int | None = None) -> Response:
    labels, name = signups.config.labels, signups.config.name
    message = {"sent": labels.check_inbox.format(name=name, email=email),
               "not_an_address": labels.not_an_address, "too_many": labels.too_many}[state]
    return _json(status, {"ok": status == 200, "message": message}, retry)
