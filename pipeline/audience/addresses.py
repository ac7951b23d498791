"""Whether an address or a name can be put in an email's headers."""

from __future__ import annotations

import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")


def email_problem(email: str) -> str | None:
    """Why an address cannot be used, or None."""
    if not email:
        return "the email is empty"
    if len(email) > 254 or not _EMAIL.match(email) or ".." in email:
        shown = email.replace("\r", "\\r").replace("\n", "\\n")
        return f"'{shown}' is not a valid email address"
    return None


def name_problem(name: str) -> str | None:
    if "\r" in name or "\n" in name:
        return "the name contains a line break, which would break the email's headers"
    return None
