"""The TLS client context shared by IMAP and SMTP."""

from __future__ import annotations

import ssl
from pathlib import Path


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying client context; ``ca_file`` adds a private CA (e.g. the cluster's)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context
