"""Whether an address or a name can be put in an email's headers."""

from __future__ import annotations

from ..config import email_address_problem


def email_problem(email: str) -> str | None:
    """Why an address cannot be used (syntax only, no DNS: email-validator), or None."""
    if not email:
        return "the email is empty"
    if email_address_problem(email):
        shown = email.replace("\r", "\\r").replace("\n", "\\n")
        return f"'{shown}' is not a valid email address"
    return None


def name_problem(name: str) -> str | None:
    if "\r" in name or "\n" in name:
        return "the name contains a line break, which would break the email's headers"
    return None
