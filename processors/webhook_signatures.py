"""How each provider signs its webhooks, checked as the provider documents it.

* SendGrid Event Webhook: ECDSA (P-256, SHA-256) over ``timestamp + body``; the public key is
  the base64 DER key from SendGrid's settings page; headers
  ``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp``.
* Mailgun: HMAC-SHA256 of ``timestamp + token`` with the webhook signing key, in the body's
  ``signature`` object; a token is accepted once (the service keeps the tokens it saw).
* Amazon SNS (SES events): RSA over the message's canonical string (SignatureVersion 1:
  SHA-1, 2: SHA-256) with the certificate at ``SigningCertURL``, which must be HTTPS on an
  SNS host (a pattern from settings) and end in ``.pem``.

Every check raises :class:`SignatureError` with what was wrong; nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

SNS_HOST_PATTERN = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"


class SignatureError(ValueError):
    """The request is not what the provider would have sent (or it came too late)."""


def _fresh(timestamp: str, now: float, tolerance_s: float) -> None:
    try:
        sent = float(timestamp)
    except ValueError as err:
        raise SignatureError("timestamp is not a number") from err
    if abs(now - sent) > tolerance_s:
        raise SignatureError(f"timestamp is {now - sent:.0f}s away from now "
                             f"(tolerance {tolerance_s:.0f}s)")


def verify_sendgrid(public_key_b64: str, signature_b64: str, timestamp: str, body: bytes,
                    now: float, tolerance_s: float) -> None:
    if not signature_b64 or not timestamp:
        raise SignatureError("signature or timestamp header missing")
    _fresh(timestamp, now, tolerance_s)
    try:
        key = load_der_public_key(base64.b64decode(public_key_b64))
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error) as err:
        raise SignatureError(f"signature or key is not base64 DER: {err}") from err
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError("the configured SendGrid key is not an elliptic-curve key")
    try:
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as err:
        raise SignatureError("ECDSA signature does not match timestamp + body") from err


def verify_mailgun(signing_key: str, signature: Any, now: float, tolerance_s: float) -> str:
    """The token, once the HMAC holds; the caller refuses a token it has seen before."""
    if not isinstance(signature, dict):
        raise SignatureError("signature object missing")
    timestamp, token, digest = (str(signature.get(k) or "")
                                for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and digest):
        raise SignatureError("signature needs timestamp, token and signature")
    _fresh(timestamp, now, tolerance_s)
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, digest.lower()):
        raise SignatureError("HMAC-SHA256 of timestamp + token does not match")
    return token


_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                      "TopicArn", "Type")


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """AWS's canonical form: ``key\\nvalue\\n`` for the type's keys, in order, skipping a
    missing Subject."""
    kind = message.get("Type")
    if kind == "Notification":
        keys = _NOTIFICATION_KEYS
    elif kind in {"SubscriptionConfirmation", "UnsubscribeConfirmation"}:
        keys = _SUBSCRIPTION_KEYS
    else:
        raise SignatureError(f"unknown SNS message type {kind!r}")
    parts = []
    for key in keys:
        if key not in message:
            if key == "Subject":
                continue
            raise SignatureError(f"SNS message has no {key}")
        parts.append(f"{key}\n{message[key]}\n")
    return "".join(parts).encode()


def sns_url_allowed(url: str, host_pattern: str) -> bool:
    """HTTPS, no credentials or port games, a host the pattern allows in full."""
    parts = urlsplit(url)
    return (parts.scheme == "https" and not parts.username and not parts.password
            and parts.hostname is not None and re.fullmatch(host_pattern, parts.hostname)
            is not None)


def sns_cert_url_allowed(url: str, host_pattern: str) -> bool:
    return sns_url_allowed(url, host_pattern) and urlsplit(url).path.endswith(".pem")


def verify_sns(message: dict[str, Any], certificate_pem: bytes) -> None:
    version = str(message.get("SignatureVersion", ""))
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)  # noqa: S303 - SNS v1 is SHA-1
    if algorithm is None:
        raise SignatureError(f"unknown SNS SignatureVersion {version!r}")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except (ValueError, binascii.Error) as err:
        raise SignatureError(f"signature or certificate unreadable: {err}") from err
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("the signing certificate's key is not RSA")
    try:
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature as err:
        raise SignatureError("SNS signature does not match the message") from err
