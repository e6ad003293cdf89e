"""Checks on values that end up in mail headers or envelopes."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from core.vocab import RejectReason
from processors.errors import RejectedInput

# NUL, and every character str.splitlines() breaks on (CR, LF, VT, FF, FS, GS, RS, NEL,
# LS, PS): the email package refuses them all in headers, so they must be refused here.
_FORBIDDEN_IN_HEADERS = ("\x00", "\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e",
                         "\x85", "\u2028", "\u2029")
_FORBIDDEN_SEARCH = re.compile("[" + re.escape("".join(_FORBIDDEN_IN_HEADERS)) + "]").search


def header_safe(field: str, value: str, max_len: int = 998) -> str:
    """Reject CR, LF and NUL (header injection) and over-long values; never silently strip."""
    if _FORBIDDEN_SEARCH(value):
        raise RejectedInput(RejectReason.HEADER_INJECTION,
                            f"{field} contains a line break or NUL")
    if len(value) > max_len:
        raise RejectedInput(RejectReason.HEADER_INJECTION,
                            f"{field} is {len(value)} characters, over {max_len}")
    return value


def deliverable_address(field: str, address: str) -> str:
    """Syntax check (RFC 5321/6531, internationalized allowed); no DNS lookups on the hot path."""
    if not address or not address.strip():
        raise RejectedInput(RejectReason.MISSING_FIELD, f"{field} is empty")
    header_safe(field, address, max_len=254)
    try:
        return _normalized(address)
    except EmailNotValidError as err:
        raise RejectedInput(RejectReason.INVALID_ADDRESS, f"{field}: {err}") from err


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# ASCII dot-atom @ LDH host names with a letters-only top-level domain: what nearly every
# address is, and what email_validator accepts unchanged but for the domain's case
_PLAIN = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)
# names of more than one label (none in email_validator's list today) are matched as suffixes;
# one-label names are the top-level label: a set lookup, not a scan of the list per address
# (the scan was 3 % of a worker's CPU in the mix, every campaign recipient a new address)
_SPECIAL_SUFFIXES = tuple("." + name for name in _SPECIAL if "." in name)


def plain_address(address: str) -> str | None:
    """The normalized form of a plain address without asking email_validator (30 us a call,
    a twentieth of a campaign email's CPU), or None for anything it must judge: non-ASCII,
    quoted or over-long parts, "--" labels (IDNA), special-use names. Tested against
    email_validator on generated addresses (tests/unit/test_validation_addresses.py)."""
    match = _PLAIN.fullmatch(address)
    if match is None or len(match[1]) > 64 or len(address) > 254 or len(match[2]) > 253:
        return None
    domain = match[2].lower()
    if "--" in domain or domain.rpartition(".")[2] in _SPECIAL or domain in _SPECIAL or (
            _SPECIAL_SUFFIXES and domain.endswith(_SPECIAL_SUFFIXES)):
        return None
    return f"{match[1]}@{domain}"


@lru_cache(maxsize=16384)
def _normalized(address: str) -> str:
    """Cached: shop addresses repeat on every event, customers on every email they get."""
    return plain_address(address) or validate_email(address,
                                                    check_deliverability=False).normalized


def required_text(field: str, value: str | None) -> str:
    if value is None or not str(value).strip():
        raise RejectedInput(RejectReason.MISSING_FIELD, f"{field} is empty")
    return value


def https_url(field: str, value: str | None, optional: bool = False) -> str | None:
    """Links in mail must be http(s); ``javascript:`` or ``data:`` is refused, not rewritten."""
    if not value:
        if optional:
            return None
        raise RejectedInput(RejectReason.MISSING_FIELD, f"{field} is empty")
    header_safe(field, value, max_len=2048)
    try:
        parts = urlsplit(value)
    except ValueError as err:  # "Invalid IPv6 URL": an unbalanced [ or ] in the host
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, f"{field}: {err}") from err
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, f"{field} is not an http(s) URL")
    return value


def payload_size(value: bytes, max_bytes: int) -> bytes:
    """Refuse a payload over FLOWMAIL_MAX_PAYLOAD_BYTES before any decoding work."""
    if len(value) > max_bytes:
        raise RejectedInput(RejectReason.OVERSIZED,
                            f"{len(value)} bytes > FLOWMAIL_MAX_PAYLOAD_BYTES={max_bytes}")
    return value
