"""Just enough DER (ASN.1) to read and write the certificate parts M2Crypto does not expose.

M2Crypto signs and verifies; this module reads extension values (proxyCertInfo, the DIRAC
group, basicConstraints), splits names into RDNs, and encodes the few structures we build
ourselves (extension values, an empty CRL).
"""

from __future__ import annotations

import datetime
from typing import NamedTuple

from dirac.Core.Utilities.Exceptions import SecurityError

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BOOLEAN = 0x01
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
IA5_STRING = 0x16
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18


class TLV(NamedTuple):
    """One DER element: its tag, its content bytes and its whole encoding."""

    tag: int
    value: bytes
    raw: bytes


def _readLength(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 4 or pos + count > len(data):
        raise SecurityError("malformed DER: bad length")
    return int.from_bytes(data[pos:pos + count], "big"), pos + count


def readTLV(data: bytes, pos: int = 0) -> tuple[TLV, int]:
    """The element starting at ``pos`` and the offset just after it."""
    if pos + 2 > len(data):
        raise SecurityError("malformed DER: truncated element")
    tag = data[pos]
    length, start = _readLength(data, pos + 1)
    end = start + length
    if end > len(data):
        raise SecurityError("malformed DER: element longer than its container")
    return TLV(tag, data[start:end], data[pos:end]), end


def children(data: bytes) -> list[TLV]:
    """The elements inside a constructed element's content."""
    items, pos = [], 0
    while pos < len(data):
        item, pos = readTLV(data, pos)
        items.append(item)
    return items


def encode(tag: int, content: bytes) -> bytes:
    """One DER element."""
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def encodeOID(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form."""
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return encode(OID, bytes(body))


def decodeOID(value: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER's content bytes."""
    if not value:
        raise SecurityError("malformed DER: empty OID")
    parts = [min(value[0] // 40, 2)]
    parts.append(value[0] - 40 * parts[0])
    current = 0
    for byte in value[1:]:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(current)
            current = 0
    return ".".join(str(p) for p in parts)


def encodeInteger(number: int) -> bytes:
    """A non-negative INTEGER."""
    return encode(INTEGER, number.to_bytes(number.bit_length() // 8 + 1, "big"))


def encodeTime(when: datetime.datetime) -> bytes:
    """UTCTime before 2050, GeneralizedTime after (RFC 5280)."""
    when = when.astimezone(datetime.UTC)
    if when.year < 2050:
        return encode(UTC_TIME, when.strftime("%y%m%d%H%M%SZ").encode())
    return encode(GENERALIZED_TIME, when.strftime("%Y%m%d%H%M%SZ").encode())


def ia5String(text: str) -> bytes:
    """An IA5String (ASCII) element."""
    return encode(IA5_STRING, text.encode("ascii"))


class Extension(NamedTuple):
    """A certificate extension: criticality and the content of its extnValue."""

    critical: bool
    value: bytes


def _tbsFields(certDER: bytes) -> list[TLV]:
    cert, _ = readTLV(certDER)
    tbs = children(cert.value)[0]
    return children(tbs.value)


def certificateExtensions(certDER: bytes) -> dict[str, Extension]:
    """The extensions of a DER certificate, by dotted OID."""
    result: dict[str, Extension] = {}
    for field in _tbsFields(certDER):
        if field.tag != 0xA3:  # [3] EXPLICIT Extensions
            continue
        for ext in children(children(field.value)[0].value):
            parts = children(ext.value)
            critical = len(parts) == 3 and parts[1].tag == BOOLEAN and parts[1].value != b"\x00"
            result[decodeOID(parts[0].value)] = Extension(critical, parts[-1].value)
    return result


def _nameFields(certDER: bytes) -> tuple[TLV, TLV]:
    fields = [f for f in _tbsFields(certDER) if f.tag != 0xA0]  # skip the explicit version
    # serial, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    return fields[2], fields[4]


def issuerRDNs(certDER: bytes) -> list[bytes]:
    """The issuer name of a DER certificate as a list of encoded RDNs."""
    return [rdn.raw for rdn in children(_nameFields(certDER)[0].value)]


def subjectRDNs(certDER: bytes) -> list[bytes]:
    """The subject name of a DER certificate as a list of encoded RDNs."""
    return [rdn.raw for rdn in children(_nameFields(certDER)[1].value)]


def rdnAttributes(rdn: bytes) -> list[str]:
    """The attribute type OIDs inside one encoded RDN."""
    rdnSet, _ = readTLV(rdn)
    return [decodeOID(children(attr.value)[0].value) for attr in children(rdnSet.value)]


def subjectPublicKeyBits(certDER: bytes) -> bytes:
    """The subjectPublicKey BIT STRING content without its unused-bits byte (for key ids)."""
    fields = [f for f in _tbsFields(certDER) if f.tag != 0xA0]
    spki = children(fields[5].value)
    return spki[1].value[1:]
