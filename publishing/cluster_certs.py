"""The certificates of a photoconsent cluster: one private CA and a certificate each for
the scheduler, the workers and the publishing computer (the client).

Dask's TLS (`distributed.security.Security`) is mutual: every connection, scheduler to
worker, worker to worker and client to scheduler, shows a certificate signed by the CA
given with ``--tls-ca-file`` and refuses one that is not. So the CA *is* the cluster's
membership: a machine holding any key signed by it can join as a worker (and be sent
galleries) or submit work. Dask does not check host names or roles, so the three
certificates differ only in name; they are separate so that each machine holds only its
own key, and a lost one is replaced by making a new folder (there is no revocation).

Keys are ECDSA P-256, certificates SHA-256 signed; key files are created ``0600``.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consent import files
from consent.errors import FileConflict, FileWriteError
from pipeline.errors import InvalidOptions, OutputConflict

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
ROLES = ("scheduler", "worker", "client")
DEFAULT_DAYS = 825  # the longest validity browsers accept for a leaf; a school year or two


def cert_name(role: str) -> str:
    return f"{role}.pem"


def key_name(role: str) -> str:
    return f"{role}-key.pem"


@dataclass(frozen=True)
class MadeCerts:
    """What `make_certs` wrote: the folder and, per machine, the files it needs."""

    folder: Path
    days: int

    def files_for(self, machine: str) -> list[Path]:
        """The files ``machine`` ("scheduler", "worker" or "client") needs."""
        return [
            self.folder / CA_CERT,
            self.folder / cert_name(machine),
            self.folder / key_name(machine),
        ]


def make_certs(folder: Path, *, days: int = DEFAULT_DAYS, hosts: tuple[str, ...] = ()) -> MadeCerts:
    """Create ``folder`` (it must not exist, or be empty) with a new CA and the scheduler,
    worker and client certificates it signs, valid ``days`` days from now.

    ``hosts`` (names or IP addresses of the scheduler) go into the scheduler's certificate
    as subject alternative names, for tools that check them; Dask itself does not.
    Raises OutputConflict if the folder holds anything (certificates are never replaced
    in place: a new CA means every machine gets new files).
    """
    if days < 1:
        raise InvalidOptions("--days must be at least 1.")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputConflict(
            f"{folder} already exists and is not an empty folder; choose a new folder "
            "(certificates are never overwritten: every machine would need the new ones)."
        )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the keys until shared out
    now = datetime.datetime.now(datetime.UTC)
    # A minute back: a machine whose clock is a little behind still accepts them.
    start, end = now - datetime.timedelta(minutes=1), now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "photoconsent cluster CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / CA_KEY, _key_pem(ca_key), private=True)
    _write(folder / CA_CERT, ca.public_bytes(serialization.Encoding.PEM), private=False)
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"photoconsent {role}")])
            )
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # Each side of a Dask connection is both a TLS server and a client.
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if role == "scheduler":
            builder = builder.add_extension(
                x509.SubjectAlternativeName(_alt_names(("localhost", "127.0.0.1", *hosts))),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(folder / key_name(role), _key_pem(key), private=True)
        _write(
            folder / cert_name(role), cert.public_bytes(serialization.Encoding.PEM), private=False
        )
    return MadeCerts(folder, days)


def _alt_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(h.strip() for h in hosts if h.strip()):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted: `dask worker` starts unattended and has no way to ask for a passphrase;
    # the file's 0600 mode and the machine's own account protect it.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    try:
        files.create_exclusive(path, data, mode=files.PRIVATE if private else files.PUBLIC)
    except (FileConflict, FileWriteError) as exc:
        raise OutputConflict(f"cannot write {path}: {exc}") from exc
