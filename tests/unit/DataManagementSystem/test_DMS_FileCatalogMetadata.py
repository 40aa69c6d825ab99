"""File Catalog metadata and datasets on SQLite and MariaDB: fields, typed values, inheritance, each operator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dirac.Core.Utilities.Exceptions import AuthorizationError, InvalidArgument, NotFound
from dirac.DataManagementSystem.Logic.CatalogPaths import Caller
from dirac.DataManagementSystem.Logic.MetaQuery import mergeConditions

ADMIN = Caller("admin", "dirac_admin", "dirac", isAdmin=True)
ALICE, BOB = Caller("alice", "dirac_user", "dirac"), Caller("bob", "dirac_user", "dirac")
HOME = "/dirac/user/a/alice"
RUNS = {1: "electron", 2: "electron", 3: "muon", 4: "pion"}  # run -> particle of the run's directory


@pytest.fixture
def tree(fc):  # noqa: ANN001, ANN201
    """HOME/prod (Year=2024) / run<N> (Run=N, Particle) / f<i> (Energy=N*10+i, Quality, Taken), i in 0..2."""
    for name, typ, kind in (("Year", "int", "-d"), ("Run", "INT", "-d"), ("Particle", "string", "-d"),
                            ("Energy", "float", "-f"), ("Quality", "string", "-f"), ("Taken", "date", "-f")):
        assert fc.addMetadataField(name, typ, kind) == "Added"
    lfns = {f"{HOME}/prod/run{run}/f{i}": {"SE": "SE-A", "Size": run, "Checksum": ""} for run in RUNS for i in range(3)}
    assert fc.addFile(ALICE, lfns)["Failed"] == {}
    fc.setMetadata(ALICE, f"{HOME}/prod", {"Year": 2024})
    for run, particle in RUNS.items():
        fc.setMetadata(ALICE, f"{HOME}/prod/run{run}", {"Run": run, "Particle": particle})
        for i in range(3):
            fc.setMetadata(ALICE, f"{HOME}/prod/run{run}/f{i}", {
                "Energy": run * 10 + i, "Quality": "good" if i else "bad", "Taken": f"2024-0{run}-1{i}"})
    return fc


def files(*pairs: tuple[int, int]) -> list[str]:
    return sorted(f"{HOME}/prod/run{run}/f{i}" for run, i in pairs)


def runs(*numbers: int) -> list[str]:
    return files(*[(run, i) for run in numbers for i in range(3)])


def test_fields_declaredOnceWithATypeForDirectoriesOrFiles(fc) -> None:
    assert fc.addMetadataField("Run", "int", "-d") == "Added"
    assert fc.addMetadataField("Run", "integer", "-d") == "Already exists"
    with pytest.raises(InvalidArgument, match="already exists for directories"):
        fc.addMetadataField("Run", "int", "-f")
    with pytest.raises(InvalidArgument, match="Invalid metadata type"):
        fc.addMetadataField("Blob", "blob", "-d")
    with pytest.raises(InvalidArgument, match="Invalid metadata name"):
        fc.addMetadataField("bad name", "int", "-d")
    fc.addMetadataField("When", "date", "-f")
    assert fc.getMetadataFields() == {"DirectoryMetaFields": {"Run": "INT"}, "FileMetaFields": {"When": "DATETIME"}}
    fc.deleteMetadataField("Run")
    assert fc.getMetadataFields()["DirectoryMetaFields"] == {}
    with pytest.raises(NotFound):
        fc.deleteMetadataField("Run")


def test_values_areTypedInheritedAndReadBack(tree) -> None:
    values, owners = tree.getDirectoryUserMetadata(BOB, f"{HOME}/prod/run3")
    assert values == {"Year": 2024, "Run": 3, "Particle": "muon"}
    assert owners == {"Year": "ParentMetadata", "Run": "OwnMetadata", "Particle": "OwnMetadata"}
    assert tree.getFileUserMetadata(BOB, f"{HOME}/prod/run3/f1") == {
        "Year": 2024, "Run": 3, "Particle": "muon", "Energy": 31.0, "Quality": "good",
        "Taken": datetime(2024, 3, 11, tzinfo=UTC)}
    with pytest.raises(InvalidArgument, match="Invalid value for Run"):
        tree.setMetadata(ALICE, f"{HOME}/prod/run1", {"Run": "one"})
    with pytest.raises(InvalidArgument, match="Unknown metadata field Colour"):
        tree.setMetadata(ALICE, f"{HOME}/prod/run1", {"Colour": "red"})
    with pytest.raises(InvalidArgument, match="Energy is a file metadata field"):
        tree.setMetadata(ALICE, f"{HOME}/prod/run1", {"Energy": 1})
    with pytest.raises(InvalidArgument, match="Metadata conflict for Year"):  # set on an ancestor already
        tree.setMetadata(ALICE, f"{HOME}/prod/run1", {"Year": 2025})
    with pytest.raises(InvalidArgument, match="Metadata conflict for Run"):  # set on descendants already
        tree.setMetadata(ALICE, f"{HOME}/prod", {"Run": 7})
    with pytest.raises(AuthorizationError):
        tree.setMetadata(BOB, f"{HOME}/prod/run1", {"Run": 9})
    with pytest.raises(NotFound):
        tree.setMetadata(ALICE, f"{HOME}/prod/none", {"Run": 9})


def test_findFilesByMetadata_eachOperatorAndCombinations(tree) -> None:
    cases = {
        "=": ({"Run": 3}, runs(3)),
        "= on a parent's field": ({"Year": 2024}, runs(1, 2, 3, 4)),
        "!=": ({"Particle": {"!=": "electron"}}, runs(3, 4)),
        "<": ({"Energy": {"<": 12}}, files((1, 0), (1, 1))),
        ">": ({"Energy": {">": 41}}, files((4, 2))),
        "<=": ({"Run": {"<=": 1}}, runs(1)),
        ">=": ({"Taken": {">=": "2024-04-11"}}, files((4, 1), (4, 2))),
        "in": ({"Particle": {"in": ["muon", "pion"]}}, runs(3, 4)),
        "list means in": ({"Run": [2, 4]}, runs(2, 4)),
        "nin": ({"Run": {"nin": [1, 2, 3]}}, runs(4)),
        "range": ({"Energy": {">=": 20, "<": 31}}, files((2, 0), (2, 1), (2, 2), (3, 0))),
        "Any": ({"Quality": "Any"}, runs(1, 2, 3, 4)),
        "three fields": ({"Particle": "electron", "Quality": "good", "Energy": {">": 15}}, files((2, 1), (2, 2))),
        "nothing": ({"Run": 3, "Particle": "pion"}, []),
    }
    for name, (query, expected) in cases.items():
        assert tree.findFilesByMetadata(BOB, query) == expected, name
    assert tree.findFilesByMetadata(BOB, {"Run": {">": 0}}, f"{HOME}/prod/run2") == runs(2)
    assert tree.findFilesByMetadata(BOB, mergeConditions(["Run>=2", "Run<4", "Quality=bad"])) == files((2, 0), (3, 0))
    for query in ({"Run": {"~": 1}}, {"Run": {"<": [1, 2]}}, {"Nope": 1}, {}, {"Run": {"in": []}}):
        with pytest.raises(InvalidArgument):
            tree.findFilesByMetadata(BOB, query)


def test_findFilesByMetadata_answersOnlyReadableFiles_andDirectoriesQueryToo(tree) -> None:
    tree.changePathMode(ALICE, {f"{HOME}/prod/run1": 0o700})
    assert tree.findFilesByMetadata(BOB, {"Particle": "electron"}) == runs(2)
    assert tree.findFilesByMetadata(ALICE, {"Particle": "electron"}) == runs(1, 2)
    found = tree.findDirectoriesByMetadata(BOB, {"Run": {">=": 1}, "Year": 2024})
    assert sorted(found.values()) == [f"{HOME}/prod/run{run}" for run in (2, 3, 4)]
    with pytest.raises(InvalidArgument, match="file metadata field"):
        tree.findDirectoriesByMetadata(BOB, {"Energy": 1})
    replicas = tree.getReplicasByMetadata(BOB, {"Run": 3})
    assert replicas["Successful"] == dict.fromkeys(runs(3), {"SE-A": ""})


def test_removeMetadata_and_removingFilesOrDirectoriesDropTheirValues(tree) -> None:
    result = tree.removeMetadata(ALICE, {f"{HOME}/prod/run1": ["Particle"], f"{HOME}/prod/run2/f0": "Energy",
                                         f"{HOME}/prod/run9": ["Run"]})
    assert result["Successful"] == {f"{HOME}/prod/run1": True, f"{HOME}/prod/run2/f0": True}
    assert result["Failed"] == {f"{HOME}/prod/run9": f"{HOME}/prod/run9 does not exist"}
    assert tree.findFilesByMetadata(BOB, {"Particle": "electron"}) == runs(2)
    assert tree.findFilesByMetadata(BOB, {"Energy": 20}) == []
    tree.removeFile(ALICE, runs(4))
    tree.removeDirectory(ALICE, f"{HOME}/prod/run4")
    assert tree.findFilesByMetadata(BOB, {"Quality": "Any"}) == runs(1, 2, 3)
    assert tree.findDirectoriesByMetadata(BOB, {"Particle": "pion"}) == {}
    result = tree.setMetadataBulk(ALICE, {f"{HOME}/prod/run1": {"Particle": "muon"}, f"{HOME}/prod/run2": {"Run": "x"}})
    assert result["Successful"] == {f"{HOME}/prod/run1": True}
    assert result["Failed"][f"{HOME}/prod/run2"].startswith("Invalid value for Run")


def test_datasets_dynamicFrozenReleasedRemoved(tree) -> None:
    name = f"{HOME}/sets/muons"
    query = {"Particle": "muon", "Path": f"{HOME}/prod"}
    assert tree.addDataset(ALICE, {name: query})["Successful"] == {name: True}
    assert tree.addDataset(ALICE, {name: query})["Failed"] == {name: f"Dataset {name} already exists"}
    assert tree.addDataset(BOB, {f"{HOME}/sets/bobs": query})["Failed"][f"{HOME}/sets/bobs"].endswith(
        "Permission denied")
    params = tree.getDatasets(BOB, [f"{HOME}/sets/*"])["Successful"][f"{HOME}/sets/*"][name]
    assert (params["Status"], params["NumberOfFiles"], params["TotalSize"], params["Owner"]) == ("Dynamic", 3, 9,
                                                                                                  "alice")
    assert params["MetaQuery"] == query
    assert tree.listDirectory(BOB, f"{HOME}/sets")["Successful"][f"{HOME}/sets"]["Datasets"][name]["Metadata"][
        "DatasetName"] == "muons"

    assert tree.getDatasetFiles(BOB, name)["Successful"] == {name: runs(3)}
    assert tree.freezeDataset(BOB, name)["Failed"] == {name: f"{name}: Permission denied (the dataset belongs to alice)"}
    assert tree.freezeDataset(ALICE, name)["Successful"] == {name: True}
    tree.setMetadata(ALICE, f"{HOME}/prod/run4", {"Particle": "muon"})
    assert tree.getDatasetFiles(BOB, name)["Successful"] == {name: runs(3)}  # frozen: the list kept
    assert tree.releaseDataset(ALICE, name)["Successful"] == {name: True}
    assert tree.getDatasetFiles(BOB, name)["Successful"] == {name: runs(3, 4)}  # dynamic: the query now
    assert tree.getDatasets(BOB, name)["Successful"][name][name]["NumberOfFiles"] == 6

    assert tree.removeDirectory(ALICE, f"{HOME}/sets")["Failed"] == {f"{HOME}/sets": "Directory not empty"}
    assert tree.removeDataset(ALICE, [name, f"{HOME}/sets/none"])["Failed"] == {
        f"{HOME}/sets/none": f"Dataset {HOME}/sets/none does not exist"}
    assert tree.getDatasets(BOB, name)["Successful"] == {name: {}}
