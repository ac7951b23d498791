"""Unsubscribe tokens: the subscriber and the list, signed with HMAC-SHA256 under
NEWSLETTER_SECRET. No database look-up is needed to tell a forged token from a real one."""

from __future__ import annotations

import base64
import hashlib
import hmac

_SEPARATOR = "\x1f"


class TokenError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: str, list_id: str):
        if not secret:
            raise ValueError("an empty secret signs nothing")
        self.key = hashlib.sha256(b"newsletter-unsubscribe\x00" + secret.encode()).digest()
        self.list_id = list_id

    def _mac(self, payload: bytes) -> bytes:
        return hmac.digest(self.key, payload, "sha256")[:20]

    def token(self, email: str) -> str:
        payload = f"{self.list_id}{_SEPARATOR}{email.lower()}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def email(self, token: str) -> str:
        """The subscriber a token names; TokenError if it is forged, altered or foreign."""
        try:
            payload_text, mac_text = token.strip().split(".")
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, TypeError):
            raise TokenError("malformed token") from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TokenError("the token's signature does not match")
        list_id, _, email = payload.decode("utf-8", "replace").partition(_SEPARATOR)
        if list_id != self.list_id or not email:
            raise TokenError("the token is for another list")
        return email


def address_of(token_or_email: str, secret: str, list_id: str) -> str:
    """The address an unsubscribe request names: as written, or read from its token
    (the subject of a mailto: unsubscribe holds the token)."""
    from ..errors import PipelineError

    text = token_or_email.strip()
    if "@" in text:
        return text
    try:
        return Signer(secret, list_id).email(text)
    except TokenError as exc:
        raise PipelineError(f"not a valid unsubscribe token ({exc}); copy it whole from "
                            "the mail's subject, or give the address") from None
