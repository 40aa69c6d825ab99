"""The File Catalog schema: a directory tree with a closure table, files, replicas, typed metadata, datasets.

Built for a million files and bulk calls (docs/catalog.md explains each choice):

* every directory and file is found by a 16-byte hash of its full path (``PathHash``,
  ``LFNHash``, unique), so a batch of LFNs resolves in one ``IN`` query whatever the tree
  looks like, and no index has to hold a 1,024-character path;
* ``FC_DirectoryClosure`` holds one row per (ancestor, descendant) pair: whole subtrees
  (recursive size, dump, inherited metadata, ``path`` restrictions of queries) are one join;
* metadata values live in one table per kind (directory, file) and type (int, float,
  string, date), indexed by (FieldID, Value): a condition is an index range scan;
* Storage Element names are small integers (a replica row is three numbers, a status and a PFN).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BINARY,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from dirac.Core.Base.DB import UTCDateTime

MAX_LFN_LENGTH = 1024
MAX_NAME_LENGTH = 255
MAX_STRING_META_LENGTH = 128
ROOT = "/"
CHUNK = 2000  # hashes or IDs per IN list: far under SQLite's and MariaDB's limits, big enough to amortise a query

#: Metadata value types: the canonical name (DIRAC's MySQL spelling) and its column type.
META_TYPES = {
    "INT": BigInteger,
    "FLOAT": Float,
    "VARCHAR(128)": lambda: String(MAX_STRING_META_LENGTH),
    "DATETIME": UTCDateTime,
}
META_KINDS = {"D": "Dir", "F": "File"}

# 64-bit keys on MariaDB; on SQLite an INTEGER PRIMARY KEY is the 64-bit rowid already.
BigID = BigInteger().with_variant(Integer, "sqlite")


#: spellings accepted by addMetadataField (lower case) -> canonical type
META_TYPE_ALIASES = {"int": "INT", "integer": "INT", "bigint": "INT", "float": "FLOAT", "double": "FLOAT",
                     "string": "VARCHAR(128)", "str": "VARCHAR(128)", "varchar(128)": "VARCHAR(128)",
                     "date": "DATETIME", "datetime": "DATETIME"}


def coerceMetaValue(typeName: str, value: Any) -> Any:
    """``value`` as the Python value of a metadata type (ValueError when it is not one)."""
    if typeName == "INT":
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    if typeName == "FLOAT":
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        return float(value)
    if typeName == "DATETIME":
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
                try:
                    return datetime.strptime(value, form).replace(tzinfo=UTC)
                except ValueError:
                    continue
        raise ValueError(f"{value!r} is not a date (YYYY-mm-dd[ HH:MM:SS])")
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a string")
    text = str(value)
    if len(text) > MAX_STRING_META_LENGTH:
        raise ValueError(f"string longer than {MAX_STRING_META_LENGTH} characters")
    return text


def pathHash(path: str) -> bytes:
    """The 16-byte key under which a directory or file path is indexed."""
    return hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def parentOf(path: str) -> str:
    """The directory holding ``path`` ('/' for top-level entries and for '/')."""
    return path.rsplit("/", 1)[0] or ROOT


def ancestorsOf(path: str) -> list[str]:
    """``path`` and every directory above it, nearest first, '/' last."""
    chain = [path]
    while path != ROOT:
        path = parentOf(path)
        chain.append(path)
    return chain


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size``: IN lists far under SQLite's and MariaDB's limits."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def joinPath(directory: str, name: str) -> str:
    """The path of entry ``name`` in ``directory``."""
    return f"{directory.rstrip('/')}/{name}"


def depthOf(path: str) -> int:
    """How many components ``path`` has ('/' has none)."""
    return 0 if path == ROOT else path.count("/")


metadata = MetaData()

storageElements = Table(
    "FC_StorageElements", metadata,
    Column("SEID", Integer, primary_key=True, autoincrement=True),
    Column("SEName", String(128), nullable=False, unique=True),
)

directories = Table(
    "FC_Directories", metadata,
    Column("DirID", BigID, primary_key=True, autoincrement=True),
    Column("Parent", BigInteger, nullable=True),  # None for "/"
    Column("Path", String(MAX_LFN_LENGTH), nullable=False),
    Column("PathHash", BINARY(16), nullable=False),
    Column("Owner", String(64), nullable=False),
    Column("OwnerGroup", String(128), nullable=False),
    Column("Mode", SmallInteger, nullable=False),
    Column("CreationDate", UTCDateTime, nullable=False),
    Column("ModificationDate", UTCDateTime, nullable=False),
    UniqueConstraint("PathHash", name="uq_FC_Directories_PathHash"),
    Index("ix_FC_Directories_Parent", "Parent"),
)

closure = Table(
    "FC_DirectoryClosure", metadata,
    Column("AncestorID", BigInteger, primary_key=True, autoincrement=False),
    Column("DirID", BigInteger, primary_key=True, autoincrement=False),
    Column("Depth", SmallInteger, nullable=False),
    Index("ix_FC_DirectoryClosure_DirID", "DirID", "AncestorID"),
)

files = Table(
    "FC_Files", metadata,
    Column("FileID", BigID, primary_key=True, autoincrement=True),
    Column("DirID", BigInteger, nullable=False),
    Column("FileName", String(MAX_NAME_LENGTH), nullable=False),
    Column("LFNHash", BINARY(16), nullable=False),
    Column("Size", BigInteger, nullable=False),
    Column("Checksum", String(64), nullable=False, default=""),
    Column("ChecksumType", String(16), nullable=False, default="Adler32"),
    Column("GUID", String(36), nullable=False),
    Column("Status", String(32), nullable=False),
    Column("Owner", String(64), nullable=False),
    Column("OwnerGroup", String(128), nullable=False),
    Column("Mode", SmallInteger, nullable=False),
    Column("CreationDate", UTCDateTime, nullable=False),
    Column("ModificationDate", UTCDateTime, nullable=False),
    UniqueConstraint("LFNHash", name="uq_FC_Files_LFNHash"),
    Index("ix_FC_Files_DirID_FileName", "DirID", "FileName"),
    Index("ix_FC_Files_GUID", "GUID"),
)

replicas = Table(
    "FC_Replicas", metadata,
    Column("FileID", BigInteger, primary_key=True, autoincrement=False),
    Column("SEID", Integer, primary_key=True, autoincrement=False),
    Column("Status", String(32), nullable=False),
    Column("PFN", String(MAX_LFN_LENGTH), nullable=False, default=""),
    Index("ix_FC_Replicas_SEID", "SEID"),
)

metaFields = Table(
    "FC_MetaFields", metadata,
    Column("FieldID", Integer, primary_key=True, autoincrement=True),
    Column("FieldName", String(64), nullable=False, unique=True),
    Column("Kind", String(1), nullable=False),  # D (directories, inherited) or F (files)
    Column("FieldType", String(16), nullable=False),  # a key of META_TYPES
)


def _metaValueTable(kind: str, typeName: str) -> Table:
    owner = "DirID" if kind == "D" else "FileID"
    name = f"FC_{META_KINDS[kind]}Meta_{typeName.split('(')[0].capitalize()}"
    return Table(
        name, metadata,
        Column("FieldID", Integer, primary_key=True, autoincrement=False),
        Column(owner, BigInteger, primary_key=True, autoincrement=False),
        Column("Value", META_TYPES[typeName](), nullable=False),
        Index(f"ix_{name}_Value", "FieldID", "Value", owner),
        Index(f"ix_{name}_{owner}", owner),
    )


#: {(kind, type): table} of metadata values, e.g. ("D", "INT") -> FC_DirMeta_Int(FieldID, DirID, Value)
metaValues = {(kind, typeName): _metaValueTable(kind, typeName) for kind in META_KINDS for typeName in META_TYPES}

datasets = Table(
    "FC_Datasets", metadata,
    Column("DatasetID", Integer, primary_key=True, autoincrement=True),
    Column("DirID", BigInteger, nullable=False),
    Column("DatasetName", String(MAX_NAME_LENGTH), nullable=False),
    Column("MetaQuery", Text, nullable=False),  # JSON of the query, its Path included
    Column("Status", String(16), nullable=False),  # Dynamic | Frozen
    Column("Owner", String(64), nullable=False),
    Column("OwnerGroup", String(128), nullable=False),
    Column("NumberOfFiles", BigInteger, nullable=False, default=0),
    Column("TotalSize", BigInteger, nullable=False, default=0),
    Column("DatasetHash", String(32), nullable=False, default=""),
    Column("CreationDate", UTCDateTime, nullable=False),
    Column("ModificationDate", UTCDateTime, nullable=False),
    UniqueConstraint("DirID", "DatasetName", name="uq_FC_Datasets_Name"),
    Index("ix_FC_Datasets_DatasetName", "DatasetName"),
)

datasetFiles = Table(
    "FC_DatasetFiles", metadata,
    Column("DatasetID", Integer, primary_key=True, autoincrement=False),
    Column("FileID", BigInteger, primary_key=True, autoincrement=False),
    Index("ix_FC_DatasetFiles_FileID", "FileID"),
)
