"""User metadata of the File Catalog: declared typed fields, values on directories and files, queries.

A field is declared once, for directories ("D") or for files ("F"), with a type (INT, FLOAT,
VARCHAR(128), DATETIME). A directory value holds for everything below that directory, so
along one branch of the tree a field is set at most once (setting it where an ancestor or a
descendant already has it is refused, as in DIRAC). Queries are conditions
``(field, operator, operand)`` combined with AND; operators: = != < > <= >= in nin exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, select, true

from dirac.Core.Utilities.Exceptions import InvalidArgument, NotFound
from dirac.DataManagementSystem.DB import FileCatalogTables as T
from dirac.DataManagementSystem.DB.FileCatalogTables import META_TYPE_ALIASES, ROOT, chunks, coerceMetaValue, joinPath

if TYPE_CHECKING:
    from dirac.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

OPERATORS = ("=", "!=", "<", ">", "<=", ">=", "in", "nin", "exists")
Condition = tuple[str, str, Any]  # (field, operator, operand)
Field = tuple[int, str, str]  # (FieldID, Kind, FieldType)


def _compare(column: Any, operator: str, operand: Any) -> Any:
    if operator == "exists":
        return true()
    if operator in ("in", "nin"):
        return column.in_(operand) if operator == "in" else column.not_in(operand)
    return {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, ">": column.__gt__,
            "<=": column.__le__, ">=": column.__ge__}[operator](operand)


class FileCatalogMetadata:
    """The metadata part of FileCatalogDB (a mix-in: it uses the tables and lookups of FileCatalogDB)."""

    # -- fields ---------------------------------------------------------------------------------
    def _fields(self: FileCatalogDB, conn: Connection) -> dict[str, Field]:
        mf = T.metaFields
        return {name: (fid, kind, typ) for fid, name, kind, typ in conn.execute(
            select(mf.c.FieldID, mf.c.FieldName, mf.c.Kind, mf.c.FieldType))}

    def getMetadataFields(self: FileCatalogDB) -> dict[str, dict[str, str]]:
        """{'D': {field: type}, 'F': {field: type}}."""
        with self.connection("getMetadataFields") as conn:
            fields = self._fields(conn)
        return {kind: {name: typ for name, (_, k, typ) in sorted(fields.items()) if k == kind} for kind in ("D", "F")}

    def addMetadataField(self: FileCatalogDB, name: str, typeName: str, kind: str) -> str:
        """Declare a field ('D' or 'F'); 'Added', or 'Already exists' when declared the same way."""
        canonical = META_TYPE_ALIASES.get(typeName.lower())
        if canonical is None:
            raise InvalidArgument(f"Invalid metadata type {typeName!r}: use int, float, string or date")
        if not name.isidentifier() or len(name) > 64:
            raise InvalidArgument(f"Invalid metadata name {name!r}: letters, digits and _ only")
        with self.transaction("addMetadataField") as conn:
            existing = self._fields(conn).get(name)
            if existing is not None:
                if existing[1:] == (kind, canonical):
                    return "Already exists"
                what = "directories" if existing[1] == "D" else "files"
                raise InvalidArgument(f"Metadata field {name} already exists for {what} with type {existing[2]}")
            conn.execute(T.metaFields.insert().values(FieldName=name, Kind=kind, FieldType=canonical))
        return "Added"

    def deleteMetadataField(self: FileCatalogDB, name: str) -> None:
        """Forget a field and every value it has."""
        with self.transaction("deleteMetadataField") as conn:
            field = self._fields(conn).get(name)
            if field is None:
                raise NotFound(f"No metadata field {name}")
            fid, kind, typ = field
            conn.execute(delete(T.metaValues[(kind, typ)]).where(T.metaValues[(kind, typ)].c.FieldID == fid))
            conn.execute(delete(T.metaFields).where(T.metaFields.c.FieldID == fid))

    def _deleteMetaValues(self: FileCatalogDB, conn: Connection, kind: str, ids: Sequence[int]) -> None:
        owner = "DirID" if kind == "D" else "FileID"
        for (k, _), table in T.metaValues.items():
            if k == kind and ids:
                conn.execute(delete(table).where(table.c[owner].in_(list(ids))))

    # -- values -----------------------------------------------------------------------------------
    def _typedValues(self: FileCatalogDB, conn: Connection, kind: str, values: Mapping[str, Any]
                     ) -> list[tuple[Field, str, Any]]:
        fields = self._fields(conn)
        typed = []
        for name, value in values.items():
            if name not in fields:
                raise InvalidArgument(f"Unknown metadata field {name} (an administrator declares fields first)")
            field = fields[name]
            if field[1] != kind:
                raise InvalidArgument(f"{name} is a {'directory' if field[1] == 'D' else 'file'} metadata field")
            try:
                typed.append((field, name, coerceMetaValue(field[2], value)))
            except ValueError as exc:
                raise InvalidArgument(f"Invalid value for {name}: {exc}") from None
        return typed

    def setDirectoryMetadata(self: FileCatalogDB, path: str, values: Mapping[str, Any]) -> None:
        """Set directory fields on a directory (refused where an ancestor or descendant sets them already)."""
        c = T.closure
        with self.transaction("setDirectoryMetadata") as conn:
            directory = self._directoriesByPath(conn, [path]).get(path)
            if directory is None:
                raise NotFound(f"Directory {path} does not exist")
            dirID = directory["DirID"]
            for (fid, _, typ), name, value in self._typedValues(conn, "D", values):
                table = T.metaValues[("D", typ)]
                lineage = select(c.c.AncestorID).where(c.c.DirID == dirID).union(
                    select(c.c.DirID).where(c.c.AncestorID == dirID))
                clash = conn.scalar(select(table.c.DirID).where(table.c.FieldID == fid, table.c.DirID != dirID,
                                                                 table.c.DirID.in_(lineage)).limit(1))
                if clash is not None:
                    raise InvalidArgument(f"Metadata conflict for {name}: it is already set on "
                                          f"{self._pathOfDirectory(conn, clash)}")
                conn.execute(self.upsert(table, {"FieldID": fid, "DirID": dirID, "Value": value}, ["Value"]))

    def setFileMetadata(self: FileCatalogDB, lfn: str, values: Mapping[str, Any]) -> None:
        """Set file fields on a file."""
        with self.transaction("setFileMetadata") as conn:
            found = self._filesByLFN(conn, [lfn]).get(lfn)
            if found is None:
                raise NotFound(f"File {lfn} does not exist")
            for (fid, _, typ), _name, value in self._typedValues(conn, "F", values):
                conn.execute(self.upsert(T.metaValues[("F", typ)],
                                         {"FieldID": fid, "FileID": found["FileID"], "Value": value}, ["Value"]))

    def removeMetadata(self: FileCatalogDB, kind: str, path: str, names: Sequence[str]) -> None:
        """Remove the values of fields from a directory ('D') or a file ('F'); unknown fields are refused."""
        owner = "DirID" if kind == "D" else "FileID"
        with self.transaction("removeMetadata") as conn:
            entry = (self._directoriesByPath(conn, [path]) if kind == "D" else self._filesByLFN(conn, [path])).get(path)
            if entry is None:
                raise NotFound(f"{path} does not exist")
            fields = self._fields(conn)
            for name in names:
                if name not in fields or fields[name][1] != kind:
                    raise InvalidArgument(f"Unknown metadata field {name} for {path}")
                fid, _, typ = fields[name]
                table = T.metaValues[(kind, typ)]
                conn.execute(delete(table).where(table.c.FieldID == fid, table.c[owner] == entry[owner]))

    def _pathOfDirectory(self: FileCatalogDB, conn: Connection, dirID: int) -> str:
        return conn.scalar(select(T.directories.c.Path).where(T.directories.c.DirID == dirID)) or f"DirID {dirID}"

    def getDirectoryUserMetadata(self: FileCatalogDB, path: str) -> tuple[dict[str, Any], dict[str, str]]:
        """({field: value} set on the directory or inherited, {field: 'OwnMetadata' | 'ParentMetadata'})."""
        c, mf = T.closure, T.metaFields
        values: dict[str, Any] = {}
        owners: dict[str, str] = {}
        with self.connection("getDirectoryUserMetadata") as conn:
            directory = self._directoriesByPath(conn, [path]).get(path)
            if directory is None:
                raise NotFound(f"Directory {path} does not exist")
            for (kind, _), table in T.metaValues.items():
                if kind != "D":
                    continue
                for name, value, depth in conn.execute(
                        select(mf.c.FieldName, table.c.Value, c.c.Depth).join(mf, mf.c.FieldID == table.c.FieldID)
                        .join(c, c.c.AncestorID == table.c.DirID).where(c.c.DirID == directory["DirID"])
                        .order_by(c.c.Depth.desc())):
                    values[name] = value
                    owners[name] = "OwnMetadata" if depth == 0 else "ParentMetadata"
        return values, owners

    def getFileUserMetadata(self: FileCatalogDB, lfn: str) -> dict[str, Any]:
        """{field: value} set on a file itself."""
        mf = T.metaFields
        values: dict[str, Any] = {}
        with self.connection("getFileUserMetadata") as conn:
            found = self._filesByLFN(conn, [lfn]).get(lfn)
            if found is None:
                raise NotFound(f"File {lfn} does not exist")
            for (kind, _), table in T.metaValues.items():
                if kind == "F":
                    values.update(conn.execute(select(mf.c.FieldName, table.c.Value)
                                               .join(mf, mf.c.FieldID == table.c.FieldID)
                                               .where(table.c.FileID == found["FileID"])).all())
        return values

    # -- queries ----------------------------------------------------------------------------------
    def _typedConditions(self: FileCatalogDB, conn: Connection, conditions: Sequence[Condition]
                         ) -> list[tuple[Field, str, Any]]:
        """The conditions with their field and operands of the field's type (InvalidArgument otherwise)."""
        fields = self._fields(conn)
        typed = []
        for name, operator, operand in conditions:
            if name not in fields:
                raise InvalidArgument(f"Unknown metadata field {name}")
            if operator not in OPERATORS:
                raise InvalidArgument(f"Unknown operator {operator!r} for {name}: use one of {' '.join(OPERATORS)}")
            typ = fields[name][2]
            try:
                if operator in ("in", "nin"):
                    operand = [coerceMetaValue(typ, value) for value in operand]
                elif operator != "exists":
                    operand = coerceMetaValue(typ, operand)
            except (ValueError, TypeError) as exc:
                raise InvalidArgument(f"Invalid value for {name}: {exc}") from None
            typed.append((fields[name], operator, operand))
        return typed

    def _matchingDirectories(self: FileCatalogDB, field: Field, operator: str, operand: Any) -> Any:
        """A SELECT of the DirIDs whose own or inherited value of a directory field matches."""
        fid, _, typ = field
        table, cl = T.metaValues[("D", typ)].alias(), T.closure.alias()
        return (select(cl.c.DirID).join(table, table.c.DirID == cl.c.AncestorID)
                .where(table.c.FieldID == fid, _compare(table.c.Value, operator, operand)))

    def _underPath(self: FileCatalogDB, conn: Connection, path: str) -> int | None:
        directory = self._directoriesByPath(conn, [path]).get(path)
        if directory is None:
            raise NotFound(f"Directory {path} does not exist")
        return None if path == ROOT else directory["DirID"]

    def findFiles(self: FileCatalogDB, conditions: Sequence[Condition], path: str = ROOT
                  ) -> list[tuple[str, int, int, int]]:
        """[(lfn, FileID, DirID, Size)] of the files under ``path`` meeting every condition."""
        f, d = T.files, T.directories
        with self.connection("findFiles") as conn:
            under = self._underPath(conn, path)
            typed = self._typedConditions(conn, conditions)
            query = select(d.c.Path, f.c.FileName, f.c.FileID, f.c.DirID, f.c.Size).join(d, d.c.DirID == f.c.DirID)
            for field, operator, operand in typed:
                if field[1] == "F":
                    table = T.metaValues[("F", field[2])].alias()
                    query = query.join(table, and_(table.c.FileID == f.c.FileID, table.c.FieldID == field[0],
                                                   _compare(table.c.Value, operator, operand)))
            directoryConditions = [condition for condition in typed if condition[0][1] == "D"]
            if not directoryConditions:
                if under is not None:
                    query = query.where(f.c.DirID.in_(select(T.closure.c.DirID).where(T.closure.c.AncestorID == under)))
                rows = list(conn.execute(query))
            else:
                # The directories first, then their files: in one statement SQLite walked every file
                # under the path (its first IN list) to filter them by the others.
                dirIDs = list(conn.scalars(self._directoriesMeeting(directoryConditions, under)))
                rows = [row for part in chunks(dirIDs) for row in conn.execute(query.where(f.c.DirID.in_(part)))]
            return [(joinPath(dirPath, name), fileID, dirID, size) for dirPath, name, fileID, dirID, size in rows]

    def _directoriesMeeting(self: FileCatalogDB, conditions: Sequence[tuple[Field, str, Any]], under: int | None
                            ) -> Any:
        """A SELECT of the DirIDs (under ``under`` when given) meeting every directory condition."""
        query = select(T.directories.c.DirID)
        if under is not None:
            query = query.where(T.directories.c.DirID.in_(select(T.closure.c.DirID)
                                                          .where(T.closure.c.AncestorID == under)))
        for field, operator, operand in conditions:
            query = query.where(T.directories.c.DirID.in_(self._matchingDirectories(field, operator, operand)))
        return query

    def findDirectories(self: FileCatalogDB, conditions: Sequence[Condition], path: str = ROOT) -> dict[int, str]:
        """{DirID: path} of the directories under ``path`` whose (inherited) directory metadata meet every condition."""
        d = T.directories
        with self.connection("findDirectories") as conn:
            under = self._underPath(conn, path)
            query = select(d.c.DirID, d.c.Path)
            if under is not None:
                query = query.where(d.c.DirID.in_(select(T.closure.c.DirID).where(T.closure.c.AncestorID == under)))
            for (name, *_), (field, operator, operand) in zip(conditions, self._typedConditions(conn, conditions),
                                                              strict=True):
                if field[1] != "D":
                    raise InvalidArgument(f"{name} is a file metadata field: only directory fields select directories")
                query = query.where(d.c.DirID.in_(self._matchingDirectories(field, operator, operand)))
            return dict(conn.execute(query).all())
