"""A private certificate authority for the local stack's TLS listeners, made at start-up:
the server's certificate and one client certificate (for the mutual-TLS listener).

Managed Kafka and OpenSearch speak TLS with certificates of a CA the client must be told
about (``FLOWMAIL_KAFKA_SSL_CA_FILE``); the local stack does the same with a CA of its own,
so the secured path is exercised for real: a client without the CA is refused, as it would
be against a managed cluster. Files under ``<stack>/tls`` (keys readable by the owner only);
made once and kept, so a client configured yesterday still trusts today's broker.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825  # what browsers and most TLS stacks still accept for a server certificate
HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class StackTls:
    """Paths of the CA certificate (what clients trust) and the server's key and chain."""

    ca_file: Path
    server_cert: Path  # the server's certificate, then the CA's (PEM)
    server_key: Path  # unencrypted PKCS#8 (PEM)
    client_cert: Path  # a client's, for the mutual-TLS listener (the CA's too)
    client_key: Path

    @property
    def server_keystore(self) -> Path:
        """Key and chain in one PEM file: Kafka's ``ssl.keystore.type=PEM`` reads this."""
        return self.server_key.with_name("server-keystore.pem")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flowmail local stack"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_bytes(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_tls(folder: Path, now: dt.datetime | None = None) -> StackTls:
    """The stack's CA and server certificate, made if missing (or expiring within a week)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    tls = StackTls(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem",
                   folder / "client.pem", folder / "client-key.pem")
    now = now or dt.datetime.now(dt.UTC)
    made = (tls.server_keystore, tls.ca_file, tls.server_cert, tls.client_cert, tls.client_key)
    if all(path.exists() for path in made):
        current = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
        if current.not_valid_after_utc - now > dt.timedelta(days=7):
            return tls
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("flowmail local CA"))
          .issuer_name(_name("flowmail local CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(host) for host in HOSTS]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ADDRESSES]
    server = (x509.CertificateBuilder().subject_name(_name("localhost"))
              .issuer_name(ca.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (x509.CertificateBuilder().subject_name(_name("flowmail-client"))
              .issuer_name(ca.subject).public_key(client_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    tls.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM) + ca_pem)
    _write_private(tls.client_key, _pem_key(client_key))
    chain = server.public_bytes(serialization.Encoding.PEM) + ca_pem
    tls.ca_file.write_bytes(ca_pem)
    tls.server_cert.write_bytes(chain)
    _write_private(tls.server_key, _pem_key(key))
    _write_private(tls.server_keystore, _pem_key(key) + chain)
    return tls
