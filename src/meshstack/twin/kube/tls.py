"""The server's certificate authority and serving certificate, as k3s makes them.

k3s writes a self-signed CA under its data dir and a serving certificate whose
SANs hold every address the API is reached on (node IP, ``--tls-san``, 127.0.0.1,
``kubernetes.default.svc`` ...); the kubeconfig carries the CA. The twin does the
same with an ECDSA key, so clients verify the server as they would a real k3s.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_YEAR = dt.timedelta(days=365)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(
    subject: str, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + 10 * _YEAR)
    )


def ensure_ca(tls_dir: Path, name: str = "k3s-server-ca") -> tuple[Path, Path]:
    """The CA's certificate and key, made once and kept in ``tls_dir``."""
    crt, key_path = tls_dir / "server-ca.crt", tls_dir / "server-ca.key"
    if crt.exists() and key_path.exists():
        return crt, key_path
    tls_dir.mkdir(parents=True, exist_ok=True)
    key = _key()
    cert = (
        _builder(name, _name(name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt, key_path


def issue_serving(
    tls_dir: Path, sans: list[str], name: str = "k3s"
) -> tuple[Path, Path]:
    """A serving certificate signed by the CA for every address in ``sans``."""
    ca_crt, ca_key_path = ensure_ca(tls_dir)
    ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    key = _key()
    alt: list[x509.GeneralName] = []
    for san in dict.fromkeys(sans):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            alt.append(x509.DNSName(san))
    cert = (
        _builder(name, ca_cert.subject, key.public_key())
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    crt, key_path = tls_dir / f"{name}-serving.crt", tls_dir / f"{name}-serving.key"
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt, key_path
