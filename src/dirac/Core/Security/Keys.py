"""Private keys: generate, load (with or without a passphrase) and write as PEM."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from M2Crypto import BIO, EVP, RSA

from dirac.Core.Utilities.Exceptions import ConfigurationError, SecurityError

_ENCRYPTED_MARKERS = (b"ENCRYPTED PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED")


def generateRSAKey(bits: int = 2048) -> EVP.PKey:
    """A new RSA key pair (public exponent 65537)."""
    if bits < 1024:
        raise SecurityError(f"refusing to generate a {bits}-bit RSA key: use at least 2048")
    rsa = RSA.gen_key(bits, 65537, callback=lambda *_: None)
    pkey = EVP.PKey()
    pkey.assign_rsa(rsa)
    return pkey


def isEncryptedPEM(pem: bytes) -> bool:
    """True when the PEM private key needs a passphrase."""
    return any(marker in pem for marker in _ENCRYPTED_MARKERS)


def extractPrivateKeyPEM(pem: bytes) -> bytes | None:
    """The first private-key PEM block in ``pem`` (None when there is none)."""
    begin = pem.find(b"-----BEGIN ")
    while begin != -1:
        lineEnd = pem.find(b"-----", begin + 11)
        label = pem[begin + 11:lineEnd]
        end = pem.find(b"-----END " + label + b"-----", lineEnd)
        if end == -1:
            return None
        end += len(b"-----END ") + len(label) + 5
        if label.endswith(b"PRIVATE KEY"):
            return pem[begin:end] + b"\n"
        begin = pem.find(b"-----BEGIN ", end)
    return None


def loadPrivateKey(pem: bytes, passphrase: bytes | str | None = None, source: str = "the key") -> EVP.PKey:
    """Load a PEM private key; ``passphrase`` is needed only when the key is encrypted."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    if isEncryptedPEM(pem) and passphrase is None:
        raise SecurityError(f"{source} is encrypted: a passphrase is needed")

    def _callback(*_args: object) -> bytes:
        return passphrase or b""

    try:
        return EVP.load_key_bio(BIO.MemoryBuffer(pem), callback=_callback)
    except (EVP.EVPError, ValueError) as exc:
        if isEncryptedPEM(pem):
            raise SecurityError(f"cannot decrypt {source}: wrong passphrase?") from exc
        raise SecurityError(f"cannot read the private key in {source}: {exc}") from exc


def privateKeyToPEM(pkey: EVP.PKey, passphrase: bytes | str | None = None) -> bytes:
    """The key as PEM: traditional RSA form when unencrypted (what grid tools expect), else PKCS#8."""
    if passphrase is None:
        try:
            public = pkey.get_rsa()  # M2Crypto wraps it as public-only; re-wrap the same key to write it all
        except ValueError:
            return pkey.as_pem(cipher=None)
        return RSA.RSA(public.rsa, 0).as_pem(cipher=None)
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    return pkey.as_pem(cipher="aes_256_cbc", callback=lambda *_: secret)


def publicKeyMatches(pkey: EVP.PKey, other: EVP.PKey) -> bool:
    """True when both keys have the same public part."""
    return _publicPart(pkey) == _publicPart(other)


def _publicPart(pkey: EVP.PKey) -> bytes:
    try:
        rsa = pkey.get_rsa()
        return rsa.e + rsa.n
    except ValueError:
        return pkey.get_ec().pub().get_der()


def writePrivateFile(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` atomically to ``path`` with ``mode`` (the file never exists world-readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def readEncryptionKeyFile(keyFile: str, option: str) -> bytes:
    """The secret key (e.g. Fernet) in ``keyFile``, named by the CS ``option``; ConfigurationError when unusable."""
    if not keyFile:
        raise ConfigurationError(f"missing option {option}")
    try:
        return Path(keyFile).read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key file {keyFile} ({option}): {exc.strerror}") from exc


def derivedKey(material: bytes, purpose: str) -> bytes:
    """A Fernet key for ``purpose`` derived from the secret ``material`` (HKDF-SHA256): one secret serves several
    uses without one key file per use."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return base64.urlsafe_b64encode(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                         info=purpose.encode()).derive(material))


class SecretBox:
    """Secrets kept in a database, encrypted with a Fernet key (AES-128-CBC and HMAC-SHA256): the database alone
    reveals none. ``hint`` says why decryption may fail (which key is in use)."""

    def __init__(self, key: bytes, hint: str):
        from cryptography.fernet import Fernet

        self._fernet = Fernet(key)
        self.hint = hint

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, stored: str, what: str) -> str:
        """The secret; SecurityError naming ``what`` when the key does not open it."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken as exc:
            raise SecurityError(f"{what} cannot be decrypted: {self.hint}") from exc
