"""OPC UA certificates and users, shared by the edge agent (client) and the simulators (server).

Basic256Sha256 with Sign & Encrypt needs an application certificate on both sides; this makes a
self-signed one (valid one year) so a demo or a trial can run secured from the first day.
Imports asyncua lazily: the platform's core does not depend on it.
"""

from __future__ import annotations

import socket
from pathlib import Path


async def create_certificate(
    directory: Path, name: str, application_uri: str, server: bool
) -> tuple[Path, Path]:
    """Write `<name>-cert.der` and `<name>-key.pem` (kept when still valid); return their paths."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}-cert.der", directory / f"{name}-key.pem"
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    await setup_self_signed_certificate(
        key,
        cert,
        application_uri,
        socket.gethostname(),
        [usage],
        {"commonName": f"shopfloor {name}", "organizationName": "shopfloor"},
    )
    key.chmod(0o600)  # whoever reads the key can impersonate this application
    return cert, key
