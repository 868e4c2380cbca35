"""Certificates for the Linkerd twin: trust anchor, issuer and webhook serving certs.

Linkerd's install generates an ECDSA P-256 trust anchor (a self-signed CA named
``identity.linkerd.cluster.local``) and an issuer signed by it; ``check`` judges
their real validity dates. The twin does the same with ``cryptography``, and the
injector's webhook serves TLS with a certificate whose CA goes into the
MutatingWebhookConfiguration's ``caBundle``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TRUST_DOMAIN = "cluster.local"
ANCHOR_NAME = f"identity.linkerd.{TRUST_DOMAIN}"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its key, both PEM."""

    cert_pem: str
    key_pem: str

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    cn: str,
    *,
    ca: KeyPair | None = None,
    is_ca: bool = False,
    not_before: dt.datetime | None = None,
    lifetime: dt.timedelta = dt.timedelta(days=365),
    dns_names: tuple[str, ...] = (),
) -> KeyPair:
    """A certificate named ``cn``, self-signed unless ``ca`` signs it."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    issuer_name, signing_key = _name(cn), cast(Any, key)
    if ca is not None:
        issuer_name = ca.cert.subject
        signing_key = serialization.load_pem_private_key(ca.key_pem.encode(), None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True)
    )
    if dns_names:
        sans = [x509.DNSName(n) for n in dns_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
    cert = builder.sign(signing_key, hashes.SHA256())  # type: ignore[arg-type]
    return KeyPair(
        cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)
    )


def identity_pair(
    lifetime: dt.timedelta = dt.timedelta(days=365),
) -> tuple[KeyPair, KeyPair]:
    """A fresh trust anchor and an issuer it signs, as ``linkerd install`` makes."""
    anchor = issue(ANCHOR_NAME, is_ca=True, lifetime=lifetime)
    issuer = issue(ANCHOR_NAME, ca=anchor, is_ca=True, lifetime=lifetime)
    return anchor, issuer


def webhook_pair(service: str, namespace: str) -> tuple[KeyPair, KeyPair]:
    """A CA and a serving certificate for ``<service>.<namespace>.svc``."""
    host = f"{service}.{namespace}.svc"
    ca = issue(f"webhook.{namespace}.{TRUST_DOMAIN}", is_ca=True)
    leaf = issue(host, ca=ca, dns_names=(host, f"{host}.{TRUST_DOMAIN}", service))
    return ca, leaf


def validity(pem: str) -> tuple[dt.datetime, dt.datetime]:
    """(not before, not after) of the first certificate in ``pem``, in UTC."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def serial_and_cn(pem: str) -> tuple[int, str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return cert.serial_number, str(cns[0].value) if cns else ""
