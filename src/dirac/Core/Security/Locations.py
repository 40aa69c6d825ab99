"""Where credentials live: proxy file, CA directory, host and user certificates.

Environment variables win over the CS, the CS over the grid defaults, as in DIRAC.
"""

from __future__ import annotations

import os
from pathlib import Path

from dirac.Core.Config import gConfig

DEFAULT_CA_DIR = "/etc/grid-security/certificates"
DEFAULT_HOST_CERT = "/etc/grid-security/hostcert.pem"
DEFAULT_HOST_KEY = "/etc/grid-security/hostkey.pem"


def getProxyLocation() -> str:
    """``$X509_USER_PROXY``, else ``/tmp/x509up_u<uid>`` (whether or not the file exists)."""
    return os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}"


def getCAsLocation() -> str:
    """``$X509_CERT_DIR``, else ``/DIRAC/Security/CALocation``, else the grid default."""
    return (os.environ.get("X509_CERT_DIR")
            or gConfig.getValue("/DIRAC/Security/CALocation", "")
            or DEFAULT_CA_DIR)


def getHostCertificateAndKeyLocation() -> tuple[str, str] | None:
    """(cert, key) from ``/DIRAC/Security/CertFile`` and ``KeyFile`` or the grid defaults; None if missing."""
    cert = gConfig.getValue("/DIRAC/Security/CertFile", "") or DEFAULT_HOST_CERT
    key = gConfig.getValue("/DIRAC/Security/KeyFile", "") or DEFAULT_HOST_KEY
    if Path(cert).is_file() and Path(key).is_file():
        return cert, key
    return None


def getUserCertificateAndKeyLocation() -> tuple[str, str]:
    """(cert, key) from ``$X509_USER_CERT``/``$X509_USER_KEY``, else ``~/.globus/usercert.pem``/``userkey.pem``."""
    globus = Path.home() / ".globus"
    cert = os.environ.get("X509_USER_CERT") or str(globus / "usercert.pem")
    key = os.environ.get("X509_USER_KEY") or str(globus / "userkey.pem")
    return cert, key


def useServerCertificate() -> bool:
    """True when this process should authenticate with the host certificate instead of a proxy."""
    return gConfig.getValue("/DIRAC/Security/UseServerCertificate", False)
