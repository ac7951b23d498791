"""Addresses: the fast check for plain addresses never accepts what email-validator
refuses (it only spares a send the validator's cost for every reader)."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from pipeline.config import email_address_problem

CORPUS = [
    "reader@example.com", "Chen.Mo@Example.COM", "a+tag@sub.example.org", "a@b.co",
    "o'brien@example.ie", "x_y-z@mail-1.example.net", "a@b.c", "a@b.c1", "a@1.2.3.4",
    "a..b@example.com", ".a@example.com", "a.@example.com", "a@-example.com",
    "a@example-.com", "a@example..com", "a@localhost", "a@example", "a@x.test",
    "a@x.local", "a@x.invalid", "a@x.onion", "a@x.arpa", "a@x.home.arpa", "a@X.TEST",
    "a@xn--80ak6aa92e.com", "a@xn--zz.com", "a@例子.广告", "é@example.com",
    "a b@example.com", "a@example.com\n", "\na@example.com", "a@exa mple.com", "",
    "@example.com", "a@", "a@@example.com", '"quoted"@example.com', "a@[127.0.0.1]",
    "x" * 64 + "@example.com", "x" * 65 + "@example.com",
    "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["c" * 60] * 4) + ".com", "a" * 60 + "@" + ".".join(["d" * 60] * 3) + ".com",
    "a@example.c-m", "a@example.123", "a@example.co1", "a@example.museum",
]


def validator_accepts(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return False
    return True


@pytest.mark.parametrize("address", CORPUS)
def test_the_fast_check_agrees_with_email_validator(address):
    assert (email_address_problem(address) is None) == validator_accepts(address)
