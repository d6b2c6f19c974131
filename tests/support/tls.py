"""Throwaway certificates for TLS Redis servers, made by the ``openssl`` command at test time: a
CA, and one certificate it signs for 127.0.0.1 that the servers show and, as clients, the
servers and chatstream show back."""

from __future__ import annotations

import subprocess
from pathlib import Path

from launcher.local_redis import ServerTls

# P-256 keys: made in milliseconds, where RSA keys take a loaded machine a while.
KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2")


def make_certificates(directory: Path, *, auth_clients: bool = False) -> ServerTls:
    directory.mkdir(parents=True, exist_ok=True)
    tls = ServerTls(
        ca_file=directory / "ca.crt",
        cert_file=directory / "redis.crt",
        key_file=directory / "redis.key",
        auth_clients=auth_clients,
    )
    ca_key = directory / "ca.key"
    _openssl("-keyout", ca_key, "-out", tls.ca_file, "-subj", "/CN=chatstream test CA")
    _openssl(
        *("-keyout", tls.key_file, "-out", tls.cert_file, "-subj", "/CN=127.0.0.1"),
        *("-CA", tls.ca_file, "-CAkey", ca_key),
        # Python's default context checks a certificate strictly: what a leaf may be used
        # for, and the address it is for (the host name check matches 127.0.0.1).
        *("-addext", "basicConstraints=critical,CA:FALSE"),
        *("-addext", "keyUsage=critical,digitalSignature"),
        *("-addext", "extendedKeyUsage=serverAuth,clientAuth"),
        *("-addext", "subjectAltName=IP:127.0.0.1"),
    )
    return tls


def _openssl(*args: str | Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-new", *KEY, *map(str, args)],
        check=True,
        capture_output=True,
    )
