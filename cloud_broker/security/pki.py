"""A small private CA for the broker's TLS listener: EC P-256 keys, X.509 via `cryptography`.

Layout of a PKI directory::

    ca.crt  ca.key            the CA (key 0600)
    {name}.crt  {name}.key    issued certificates (key 0600)

A server certificate carries SANs (IP 127.0.0.1 and DNS localhost by default) and serverAuth;
a client certificate has CN = the gateway id (mosquitto's `use_identity_as_username` takes the
CN as the username) and clientAuth. Private keys are written, never returned or printed.
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

from edge_agent.uplink.contract import ID_RE

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
KEY_MODE = 0o600


class PkiError(ValueError):
    """A PKI directory that is missing its CA, already has one, or a bad certificate name."""


@dataclass(frozen=True)
class Issued:
    certfile: Path
    keyfile: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dongchang IoT"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def init_ca(directory: Path, common_name: str = "Dongchang IoT CA",
            days: int = 3650) -> Issued:
    """Create `ca.crt` and `ca.key` in `directory`; refuse to overwrite an existing CA."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (directory / CA_KEY).exists() or (directory / CA_CERT).exists():
        raise PkiError(f"{directory} already holds a CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(directory / CA_KEY, key)
    _write_cert(directory / CA_CERT, cert)
    return Issued(directory / CA_CERT, directory / CA_KEY)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except FileNotFoundError as err:
        raise PkiError(f"{directory} has no CA; run `dciot pki init {directory}`") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{directory / CA_KEY} is not an EC key")
    return cert, key


def _sans(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue_certificate(directory: Path, name: str, *, server: bool = False,
                      hosts: list[str] | None = None, days: int = 825) -> Issued:
    """Issue `{name}.crt`/`{name}.key` signed by the CA in `directory`.

    `server`: SANs from `hosts` (default 127.0.0.1 and localhost) and serverAuth. Otherwise a
    client certificate with CN = `name` (the gateway id) and clientAuth.
    """
    directory = Path(directory)
    if not ID_RE.match(name) or name == "ca":
        raise PkiError(f"certificate name {name!r} does not match {ID_RE.pattern}")
    if (directory / f"{name}.key").exists():
        raise PkiError(f"{directory / name}.key already exists")
    ca_cert, ca_key = _load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(_name(name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if server:
        builder = builder.add_extension(_sans(hosts or ["127.0.0.1", "localhost"]),
                                        critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(directory / f"{name}.key", key)
    _write_cert(directory / f"{name}.crt", cert)
    return Issued(directory / f"{name}.crt", directory / f"{name}.key")
