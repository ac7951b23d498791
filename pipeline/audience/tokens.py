"""Unsubscribe tokens that reveal nothing and can be rotated.

A token is ``REF.MAC``, both base64url without padding:

- REF (16 characters): the reader's ref, 12 random bytes stored with them
  (``subscribers.ref``). It is not their address, their row's id or anything of the
  sender's, so a link tells whoever sees it nothing about who the reader is or how
  large the audience is, and a new sender.email or list_id leaves every link valid.
- MAC (20 characters): the first 15 bytes of HMAC-SHA256 over ``unsubscribe\\0`` + REF,
  under a key derived from NEWSLETTER_SECRET for this one purpose.

At these lengths (whole groups of three bytes) a token has exactly one spelling: any
other (padding, white space, '+' or '/', another length, another separator) is
refused as malformed before anything else. The MAC is compared in constant time, and
only a token that passes is looked up in the database (``queries.find_reader``).

Rotation: a token signed with a secret listed in NEWSLETTER_SECRET_PREVIOUS still
verifies; new links always use NEWSLETTER_SECRET.

Confirmation links (double opt-in) are ``PAYLOAD.MAC`` the same way: PAYLOAD (24
characters) is the signup's ref (12 random bytes, ``signups.ref``) and the time the link
expires (6 bytes, big-endian Unix seconds), so the expiry is inside the MAC; the MAC
(20 characters) is over ``confirm\0`` + PAYLOAD, under a key of its own. Neither kind of
token passes for the other: other keys, other labels, other lengths.

Links in mail sent by version 0.1.0 carried the address itself:
base64url(list id \\x1f address) + "." + an HMAC under the old key. They are honoured
(``legacy``) when they are in canonical form, verify under the current or a previous
secret and name this list, so that a reader of an old issue can still leave; they
will be dropped in a later version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from binascii import b2a_base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..config import Config

REF_BYTES = 12  # a reader's ref: random bytes, stored with them (subscribers.ref)
MAC_BYTES = 15
_PURPOSE = b"unsubscribe\0"  # what the MAC is over: this label, then the ref
_KEY_LABEL = b"newsletter-as-code: the key of unsubscribe tokens\0"
_CONFIRM_PURPOSE = b"confirm\0"
_CONFIRM_KEY_LABEL = b"newsletter-as-code: the key of confirmation links\0"
EXPIRY_BYTES = 6
_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
# version 0.1.0's tokens
_LEGACY_KEY_LABEL = b"newsletter-unsubscribe\x00"
_LEGACY_SEPARATOR = "\x1f"
_LEGACY_MAC_BYTES = 20


class TokenError(ValueError):
    pass


class TokenExpired(TokenError):
    """A genuine confirmation link whose time has passed."""


def new_ref() -> bytes:
    """A reader's ref: random, so that it tells nothing of the address, the order of
    sign-up or the size of the audience. (The database gives one of its own to a row
    inserted by other means.) Never one whose token begins with "-" (base64url's 62nd
    character): a command line would take that token for an option."""
    while True:
        ref = secrets.token_bytes(REF_BYTES)
        if ref[0] >> 2 != 62:
            return ref


def encode(data: bytes) -> str:
    """base64url without padding (binascii at once: a send signs every reader's link)."""
    return b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE).decode("ascii")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def decode(text: str, size: int | None = None) -> bytes:
    """The bytes ``text`` is the canonical base64url (no padding) of, and ``size`` long
    if a size is given; TokenError for any other spelling."""
    if not text or not _ALPHABET.issuperset(text) or (
            size is not None and len(text) != len(encode(bytes(size)))):
        raise TokenError("malformed token")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # binascii.Error
        raise TokenError("malformed token") from None
    if encode(data) != text:  # a length of 4n + 1, or unused bits that are not zero
        raise TokenError("malformed token")
    return data


@dataclass(frozen=True)
class Claim:
    """Whom a genuine token names: a reader's ref or, in a link of version 0.1.0, an
    address."""

    ref: bytes = b""
    email: str = ""


class Signer:
    """Signs a reader's ref with the current secret; verifies a token with the current
    secret or any previous one."""

    def __init__(self, secret: str, previous: Iterable[str] = (), list_id: str = ""):
        if not secret:
            raise ValueError("an empty secret signs nothing")
        every = [secret, *(s for s in previous if s and s != secret)]  # current first
        self.keys = [hmac.digest(s.encode("utf-8"), _KEY_LABEL, "sha256") for s in every]
        self.macs = [Keyed(key, _PURPOSE) for key in self.keys]
        self.confirm_keys = [hmac.digest(s.encode("utf-8"), _CONFIRM_KEY_LABEL, "sha256")
                             for s in every]
        self.legacy_keys = [hashlib.sha256(_LEGACY_KEY_LABEL + s.encode()).digest()
                            for s in every]
        self.list_id = list_id  # only a legacy token names its list

    def token(self, ref: bytes) -> str:
        if len(ref) != REF_BYTES:
            raise ValueError(f"a ref is {REF_BYTES} bytes")
        # the ref and the MAC are whole groups of 3 bytes: encoded at once, as each alone
        text = encode(ref + self.macs[0].digest(ref)[:MAC_BYTES])
        return f"{text[:_REF_CHARS]}.{text[_REF_CHARS:]}"

    def verify(self, token: str) -> Claim:
        """Whom the token names; TokenError if it is malformed, forged, altered, signed
        with a secret that is neither current nor previous, or for another list. No
        database is read."""
        ref_text, dot, mac_text = token.partition(".")
        if not dot:
            raise TokenError("malformed token")
        if len(mac_text) == len(encode(bytes(_LEGACY_MAC_BYTES))):
            return self._legacy(ref_text, mac_text)
        ref, mac = decode(ref_text, REF_BYTES), decode(mac_text, MAC_BYTES)
        if not _matches(mac, [keyed.digest(ref)[:MAC_BYTES] for keyed in self.macs]):
            raise TokenError("the token's signature does not match")
        return Claim(ref=ref)

    def confirmation(self, ref: bytes, expires: datetime) -> str:
        """The token of a confirmation link: the signup's ref and its expiry, signed."""
        if len(ref) != REF_BYTES:
            raise ValueError(f"a ref is {REF_BYTES} bytes")
        payload = ref + int(expires.timestamp()).to_bytes(EXPIRY_BYTES, "big")
        return f"{encode(payload)}.{encode(_confirm_mac(self.confirm_keys[0], payload))}"

    def verify_confirmation(self, token: str, now: datetime) -> bytes:
        """The signup ref a confirmation token names; TokenError if it is malformed,
        forged or altered, TokenExpired once its time has passed. No database is read."""
        payload_text, dot, mac_text = token.partition(".")
        if not dot:
            raise TokenError("malformed token")
        payload = decode(payload_text, REF_BYTES + EXPIRY_BYTES)
        mac = decode(mac_text, MAC_BYTES)
        if not _matches(mac, [_confirm_mac(key, payload) for key in self.confirm_keys]):
            raise TokenError("the token's signature does not match")
        expires = datetime.fromtimestamp(int.from_bytes(payload[REF_BYTES:], "big"), UTC)
        if now >= expires:
            raise TokenExpired(f"the link expired at {expires.isoformat()}")
        return payload[:REF_BYTES]

    def _legacy(self, payload_text: str, mac_text: str) -> Claim:
        payload, mac = decode(payload_text), decode(mac_text, _LEGACY_MAC_BYTES)
        expected = [hmac.digest(key, payload, "sha256")[:_LEGACY_MAC_BYTES]
                    for key in self.legacy_keys]
        if not _matches(mac, expected):
            raise TokenError("the token's signature does not match")
        list_id, _, email = payload.decode("utf-8", "replace").partition(_LEGACY_SEPARATOR)
        if list_id != self.list_id or not email:
            raise TokenError("the token is for another list")
        return Claim(email=email)


class Keyed:
    """HMAC-SHA256 (RFC 2104) under one key, after a fixed prefix of the message: its
    inner and outer hash states are made once, and each digest copies them. A send signs
    every reader's link, and each hmac.digest sets its key up anew in OpenSSL (3 µs,
    where this takes under 1; tests/test_tokens.py holds it to hmac.digest)."""

    def __init__(self, key: bytes, prefix: bytes = b""):
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self.inner = hashlib.sha256(key.translate(_IPAD))
        self.inner.update(prefix)
        self.outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
assert REF_BYTES % 3 == 0 and MAC_BYTES % 3 == 0  # Signer.token encodes them at once
_REF_CHARS = REF_BYTES // 3 * 4


def _confirm_mac(key: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, _CONFIRM_PURPOSE + payload, "sha256")[:MAC_BYTES]


def _matches(mac: bytes, expected: list[bytes]) -> bool:
    """Whether mac is one of expected, every one compared in constant time."""
    found = False
    for candidate in expected:
        found |= hmac.compare_digest(mac, candidate)
    return found


def signer_for(config: Config) -> Signer:
    """The signer of this publication: NEWSLETTER_SECRET (a configuration error if it is
    not set) and NEWSLETTER_SECRET_PREVIOUS."""
    return Signer(config.require("NEWSLETTER_SECRET"), config.previous_secrets,
                  config.list_id)
