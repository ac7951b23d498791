"""What `serve` sends for a signup: the confirmation email, and the welcome issue.

Both are rendered once per process (``prepare_signup_mail``) and personalised per
reader, never rendered per request.

The welcome goes through the ledger like any send, one reader at a time. Confirming a
signup and queueing the reader's welcome (a pending row of the welcome issue's send)
are one transaction; then the row is claimed (in flight, committed) before the provider
is called, and its outcome recorded after. So:

- a process killed after the confirmation and before the claim leaves the welcome
  pending: the next `send --due` (the welcome's send is then in state ``sending``, which
  every run resumes) delivers it, and so does following the same link again;
- killed during the request, the row is in flight: the next run marks it unknown, and
  only `send WELCOME --resend-unknown` sends it again, as for any issue;
- a reader is in a send's ledger once: a second confirmation, a link followed twice, a
  reader who leaves and comes back, never gets a second welcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..audience.signup import Confirmed, confirm_signup, request_signup
from ..audience.tokens import signer_for
from ..config import Config
from ..errors import ConfigError, PipelineError
from ..issue import Issue, welcome_folder
from ..render import render_confirmation
from ..store import Database, transaction
from .ledger import Ledger
from .personalise import PreparedEmail, Recipient, with_query
from .providers import DEFERRED, RETRY, Outcome, Provider
from .send import prepare


@dataclass(frozen=True)
class SignupMail:
    confirmation: PreparedEmail
    welcome: tuple[Issue, PreparedEmail] | None  # the issue marked kind: welcome, if any


def prepare_signup_mail(config: Config) -> SignupMail:
    """The confirmation email and the welcome issue, rendered once."""
    if not config.confirm_url:
        raise ConfigError.one(config.path.name, "neither unsubscribe_url nor [signup] url is "
                                                "set; a confirmation link needs the address "
                                                "`newsletter serve` is reached at")
    confirmation = PreparedEmail(render_confirmation(config), config, "", list_headers=False)
    folder = welcome_folder(config)
    return SignupMail(confirmation, prepare(folder, config) if folder else None)


@dataclass(frozen=True)
class SignupRequest:
    email: str
    name: str
    source: str  # which form: archive, api, resubscribe, ...
    client: str  # the client's address
    agent: str  # its user agent
    language: str = ""  # the language the form gave (audience.signup.signup_language)


def send_confirmation(config: Config, db: Database, mail: SignupMail, provider: Provider,
                      request: SignupRequest, now: datetime) -> Outcome:
    """Keep the signup and mail its confirmation link (which expires after [signup]
    expiry); nothing else changes. PipelineError for an address that is not one."""
    signup = request_signup(db, request.email, request.name, request.source, request.client,
                            request.agent, now, config.signup.expiry, request.language)
    token = signer_for(config).confirmation(signup.ref, signup.expires_at)
    recipient = Recipient(signup.id, signup.email, signup.name,
                          {"confirm_url": with_query(config.confirm_url, "token", token)})
    with provider:
        return provider.send([mail.confirmation.message(recipient)], now)[0]


def confirm(config: Config, db: Database, ref: bytes, mail: SignupMail,
            new_provider: Callable[[], Provider], now: datetime,
            log: Callable[[str], None] = lambda line: None) -> Confirmed | None:
    """The signup confirmed, its reader's welcome queued in the same transaction, then
    delivered if it is still pending (see the module's note); None for a signup that is
    not in the database."""
    ledger = Ledger(db, config.database_wait.total_seconds(), log=log)
    send_id = None
    # one confirmation at a time (PostgreSQL too): the same link followed twice at once,
    # or two signups of one new address, never add the reader twice
    with transaction(db, serial=True):
        confirmed = confirm_signup(db, ref, now)
        if confirmed and mail.welcome:
            issue, email = mail.welcome
            if confirmed.joined:
                send_id = ledger.open_send(issue.id, email.subject, new_provider().name, now)
                ledger.enqueue(send_id, confirmed.subscriber_id, confirmed.email, now)
            else:
                record = ledger.find(*issue.ledger_keys)
                send_id = record.id if record else None
    if confirmed and send_id is not None and mail.welcome:
        deliver_welcome(ledger, send_id, confirmed.subscriber_id, mail.welcome[1],
                        new_provider(), now, log)
    return confirmed


def deliver_welcome(ledger: Ledger, send_id: int, subscriber_id: int, email: PreparedEmail,
                    provider: Provider, now: datetime,
                    log: Callable[[str], None] = lambda line: None) -> str | None:
    """This reader's welcome, if it is pending: claimed, sent, recorded; the outcome
    (None: nothing to send). A provider that cannot take it now leaves it pending, for
    `send --due`."""
    recipient = ledger.claim_reader(send_id, subscriber_id, now)
    for status, address, why in ledger.set_aside:
        log(f"{email.slug}: not sent to '{address}': {why} ({status})")
    ledger.set_aside.clear()
    if recipient is None:
        return None
    try:
        with provider:
            outcome = provider.send([email.message(recipient)], now)[0]
    except PipelineError as exc:  # refused or stopped (DeliveryError, DeliveryStopped)
        done = getattr(exc, "done", None)
        outcome = done[0] if done and done[0] else Outcome(RETRY, error=exc.format_message())
    status = "pending" if outcome.status in (RETRY, DEFERRED) else outcome.status
    ledger.record(send_id, [(recipient, status, outcome.message_id, outcome.error)],
                  provider.name, now)
    if status == "pending":
        log(f"{email.slug}: the welcome to a new reader was not delivered now "
            f"({outcome.error}); `newsletter send --due` sends it")
    ledger.close_if_done(send_id, now)
    return status
