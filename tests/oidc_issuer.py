"""A small OpenID Connect token issuer for tests: OAuth 2.0 client credentials at ``/token``
(client id and secret as HTTP basic auth or form fields), RS256 JWTs, the key at
``/jwks.json``; what Kafka's OAUTHBEARER validator and librdkafka's OIDC method speak to."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KID = "flowmail-test-key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Issuer:
    def __init__(self, client_id: str, client_secret: str, audience: str,
                 lifetime_s: int = 300) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.audience, self.lifetime_s = audience, lifetime_s
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.issued: list[str] = []  # the client ids tokens went to
        self.refused = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/jwks.json":
                    self._json(200, issuer.jwks())
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                client, secret = form.get("client_id", ""), form.get("client_secret", "")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    client, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                if self.path != "/token" or form.get("grant_type") != "client_credentials":
                    self._json(400, {"error": "unsupported_grant_type"})
                elif (client, secret) != (issuer.client_id, issuer.client_secret):
                    issuer.refused += 1
                    self._json(401, {"error": "invalid_client"})
                else:
                    issuer.issued.append(client)
                    self._json(200, {"access_token": issuer.token(client, form.get("scope", "")),
                                     "token_type": "Bearer", "expires_in": issuer.lifetime_s})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks.json"

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
                          "n": _int(numbers.n), "e": _int(numbers.e)}]}

    def token(self, subject: str, scope: str = "") -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": KID}
        claims = {"iss": self.url, "sub": subject, "aud": self.audience, "iat": now,
                  "nbf": now, "exp": now + self.lifetime_s, "jti": uuid.uuid4().hex}
        if scope:  # as issuers do: no scope asked for, no scope claim
            claims["scope"] = scope
        signing_input = (_b64(json.dumps(header).encode()) + "."
                         + _b64(json.dumps(claims).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def close(self) -> None:
        self.server.shutdown()
