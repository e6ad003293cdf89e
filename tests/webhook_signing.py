"""Sign webhook requests the way each provider documents it (test keys made here)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from processors.webhook_signatures import sns_string_to_sign


class SendGridSigner:
    """SendGrid's Event Webhook key pair: ECDSA P-256; the public half as SendGrid shows it."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public_b64 = base64.b64encode(self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                "Content-Type": "application/json"}


def mailgun_body(signing_key: str, event_data: dict[str, Any], timestamp: int | None = None,
                 token: str | None = None) -> dict[str, Any]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or uuid.uuid4().hex + uuid.uuid4().hex[:10]
    digest = hmac.new(signing_key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": stamp, "token": token, "signature": digest},
            "event-data": event_data}


class SnsSigner:
    """An SNS-style signing certificate (RSA 2048, self-signed) and messages signed with it."""

    def __init__(self, cert_url: str) -> None:
        self.cert_url = cert_url
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = dt.datetime.now(dt.UTC)
        self.certificate_pem = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.private, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM))

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        signed = {**message, "SignatureVersion": version, "SigningCertURL": self.cert_url}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.private.sign(sns_string_to_sign(signed), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(self, topic_arn: str, ses_event: dict[str, Any], version: str = "1"
                     ) -> dict[str, Any]:
        return self.sign({"Type": "Notification", "MessageId": str(uuid.uuid4()),
                          "TopicArn": topic_arn, "Message": json.dumps(ses_event),
                          "Timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                          .replace("+00:00", "Z"),
                          "UnsubscribeURL": "https://sns.example/unsubscribe"}, version)

    def subscription(self, topic_arn: str, subscribe_url: str) -> dict[str, Any]:
        return self.sign({"Type": "SubscriptionConfirmation", "MessageId": str(uuid.uuid4()),
                          "Token": uuid.uuid4().hex, "TopicArn": topic_arn,
                          "Message": "You have chosen to subscribe to the topic.",
                          "SubscribeURL": subscribe_url,
                          "Timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                          .replace("+00:00", "Z")})


def ses_event(kind: str, recipient: str, echo: dict[str, str], **detail: Any) -> dict[str, Any]:
    """An SES configuration-set event (eventType), tags as SES writes them (lists)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    key = kind[:1].lower() + kind[1:]
    return {"eventType": kind,
            "mail": {"timestamp": now, "messageId": uuid.uuid4().hex, "destination": [recipient],
                     "tags": {name: [value] for name, value in echo.items()}},
            key: {"timestamp": now, **detail}}
