"""dirac-ca: create a project-local CA and issue host and user certificates with it."""

from __future__ import annotations

import sys
from pathlib import Path

from dirac.Core.Base.Script import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Script
from dirac.Core.Security.CA import DEFAULT_CA_SUBJECT, CertificateAuthority
from dirac.Core.Security.Keys import writePrivateFile
from dirac.Core.Security.X509 import X509Certificate
from dirac.Core.Utilities.Exceptions import SecurityError

EPILOG = """examples:
  dirac-ca init --dir ~/.dirac/ca
  dirac-ca host server.example.org --alt localhost --alt 127.0.0.1
  dirac-ca user alice            (or a full DN: dirac-ca user "/O=DIRAC-Seed/CN=alice")
"""


def _writePair(outDir: Path, prefix: str, cert: bytes, key: bytes) -> tuple[Path, Path]:
    certPath, keyPath = outDir / f"{prefix}cert.pem", outDir / f"{prefix}key.pem"
    writePrivateFile(certPath, cert, mode=0o644)
    writePrivateFile(keyPath, key)
    return certPath, keyPath


def _describe(data: dict) -> str:
    return "\n".join(f"{name:<12} : {value}" for name, value in data.items() if value is not None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of dirac-ca."""
    script = Script("Manage the project-local certificate authority.", jsonOutput=True, epilog=EPILOG,
                    fetchRemote=False)
    parser = script.parser
    parser.add_argument("action", choices=["init", "host", "user"],
                        help="init: create the CA; host/user: issue a certificate")
    parser.add_argument("name", nargs="?", help="host name (host) or common name / DN (user)")
    parser.add_argument("--dir", default=str(Path.home() / ".dirac" / "ca"), help="CA directory (default ~/.dirac/ca)")
    parser.add_argument("--days", type=int, help="validity in days (default: 3650 for the CA, 365 otherwise)")
    parser.add_argument("--bits", type=int, default=2048, help="RSA key size (default 2048)")
    parser.add_argument("--subject", default=DEFAULT_CA_SUBJECT, help=f"CA subject (init; default {DEFAULT_CA_SUBJECT!r})")
    parser.add_argument("--certificates-dir", help="where init installs the CA by hash (default <dir>/certificates)")
    parser.add_argument("--force", action="store_true", help="init: replace an existing CA")
    parser.add_argument("--alt", action="append", help="host: extra subjectAltName (repeatable; "
                        "default localhost and 127.0.0.1)")
    parser.add_argument("--out-dir", help="where host/user write <kind>cert.pem and <kind>key.pem "
                        "(default <dir>/hosts/<name> or <dir>/users/<name>)")
    args = script.parseArgs(argv)
    ca = CertificateAuthority(args.dir)
    try:
        if args.action == "init":
            if args.name:
                return script.fail("init takes no name: use --subject", EXIT_USAGE)
            cert = ca.create(subject=args.subject, days=args.days or 3650, bits=args.bits, overwrite=args.force)
            installed = ca.installInCertificatesDir(args.certificates_dir or Path(args.dir) / "certificates")
            data = {"subject": cert.subjectDN, "notAfter": f"{cert.notAfter:%Y-%m-%d %H:%M:%S} UTC",
                    "certificate": str(ca.certPath), "key": str(ca.keyPath), "installed": str(installed)}
        else:
            if not args.name:
                return script.fail(f"{args.action} needs a name", EXIT_USAGE)
            ca.load()
            if args.action == "host":
                certPEM, keyPEM = ca.issueHostCertificate(args.name, altNames=args.alt, days=args.days or 365,
                                                          bits=args.bits)
            else:
                certPEM, keyPEM = ca.issueUserCertificate(args.name, days=args.days or 365, bits=args.bits)
            folder = args.name.strip("/").replace("/", "_").replace("=", "-")
            outDir = Path(args.out_dir) if args.out_dir else Path(args.dir) / f"{args.action}s" / folder
            certPath, keyPath = _writePair(outDir, args.action, certPEM, keyPEM)
            cert = X509Certificate.fromPEM(certPEM)
            data = {"subject": cert.subjectDN, "notAfter": f"{cert.notAfter:%Y-%m-%d %H:%M:%S} UTC",
                    "certificate": str(certPath), "key": str(keyPath)}
    except SecurityError as exc:
        return script.fail(str(exc), EXIT_FAILED)
    script.output(data, _describe)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
