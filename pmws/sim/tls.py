"""TLS for the simulator's websocket: a server context from PEM files, a throwaway self-signed certificate.

Clients trust the certificate the usual way: SSL_CERT_FILE=<cert> for anything built on
`ssl.create_default_context()` (websockets, hence pmws), or an explicit context with `cafile=<cert>`.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

#: Names the self-signed certificate is valid for (the simulator's URLs use 127.0.0.1).
SELF_SIGNED_NAMES = "DNS:localhost,IP:127.0.0.1,IP:::1"


def server_context(cert: str | Path, key: str | Path | None = None) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+) serving `cert` with `key` (or the key inside `cert`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), None if key is None else str(key))
    return context


def self_signed_cert(directory: Path, *, days: int = 7) -> tuple[Path, Path]:
    """Write a self-signed P-256 certificate for localhost/127.0.0.1/::1 and its key; returns (cert, key).

    Uses the `openssl` command line tool. The certificate is its own CA (basicConstraints CA:TRUE), so it can
    be the whole trust store a client is given.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command line tool is needed to make a self-signed certificate")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "sim-cert.pem", directory / "sim-key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(days),
            "-subj",
            "/CN=localhost",
            "-addext",
            f"subjectAltName={SELF_SIGNED_NAMES}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
