"""Whether an address or a name can be put in an email's headers."""

from __future__ import annotations

import re

from ..config import email_address_problem

NAME_LENGTH = 100  # characters of a name a message shows; a longer one is cut


def email_problem(email: str) -> str | None:
    """Why an address cannot be used (syntax only, no DNS: email-validator), or None."""
    if not email:
        return "the email is empty"
    if email_address_problem(email):
        return f"'{shown(email)}' is not a valid email address"
    return None


def invalid_reason(email: str) -> str | None:
    """Why a stored address cannot be sent to, in full (for the ledger), or None."""
    if not email:
        return "the email is empty"
    reason = email_address_problem(email)
    return f"'{shown(email)}' is not a valid email address ({reason})" if reason else None


def shown(text: str) -> str:
    """A value as one printable line: line breaks and other control characters escaped."""
    return "".join(repr(c)[1:-1] if _is_control(c) else c for c in text)


def name_problem(name: str) -> str | None:
    if "\r" in name or "\n" in name:
        return "the name contains a line break, which would break the email's headers"
    control = _CONTROL.search(name)
    if control is not None:
        return (f"the name contains the control character U+{ord(control.group()):04X}, "
                "which would break the email's headers")
    return None


def display_name(name: str) -> str:
    """A stored name as a message shows it (headers, greeting, SendGrid's `to`): control
    characters (with the spaces around them) become one space, and a name longer than
    NAME_LENGTH is cut, so that no name can break a header or a request."""
    cleaned = _CONTROLS.sub(" ", name).strip() if _CONTROL.search(name) else name
    if len(cleaned) > NAME_LENGTH:
        cleaned = cleaned[:NAME_LENGTH - 1].rstrip() + "…"
    return cleaned


# Unicode's Cc (C0, DEL, C1: tab and line breaks among them), and U+2028/U+2029
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROLS = re.compile(r"\s*(?:[\x00-\x1f\x7f-\x9f\u2028\u2029]\s*)+")


def _is_control(c: str) -> bool:
    return _CONTROL.match(c) is not None
