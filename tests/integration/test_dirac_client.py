"""The real DIRAC client library (``pip install DIRAC``) talking to our server.

A virtualenv with the ``DIRAC`` package from the package index is built once per DIRAC
version and Python version, then reused (``~/.cache/dirac-seed-tests/dirac-venv``, or
``$DIRAC_CLIENT_VENV_CACHE``). ``dirac_client_call.py`` runs with that venv's Python, so
only DIRAC's code is on the client side, and writes what each call returned; the tests
below check it. docs/dirac-compatibility.md says what is shown and how to run it.

Select or deselect with the ``dirac_client`` marker (``-m "not dirac_client"`` offline).
Without a reachable package index (and no venv in the cache) the tests are skipped, or fail
when ``CI=true``. ``DIRAC_CLIENT_VERSION`` picks another DIRAC release.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from dirac.Core.Utilities import JEncode
from tests import dirac_venv

pytestmark = [pytest.mark.dirac_client, pytest.mark.slow, pytest.mark.timeout(1200)]

HERE = Path(__file__).parent
CALL_SCRIPT = HERE / "dirac_client_call.py"
DIRAC_VERSION = dirac_venv.DIRAC_VERSION
ADMIN_DN = "/O=DIRAC-Seed/OU=dirac/CN=admin"
BOB_DN = "/O=DIRAC-Seed/OU=dirac/CN=bob"


def _loadCallScript() -> object:
    """The call script as a module (it imports DIRAC only inside its functions)."""
    spec = importlib.util.spec_from_file_location("dirac_client_call", CALL_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


callScript = _loadCallScript()


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


# -- the DIRAC virtualenv (built and cached by tests/dirac_venv.py) -----------------------------
@pytest.fixture(scope="module")
def diracVenv() -> Path:
    """A venv with DIRAC from the package index: reused when complete, built (under a lock) if not."""
    try:
        return dirac_venv.diracVenv()
    except dirac_venv.DiracUnavailable as exc:
        _unavailable(str(exc))


# -- running DIRAC ------------------------------------------------------------------------------
def _clientEnvironment(venv: Path, home: Path, proxy: Path, certificates: Path, cfg: Path) -> dict[str, str]:
    """All a DIRAC client process gets: nothing from this process's environment leaks in."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(home),
            "NO_PROXY": "127.0.0.1,localhost", "X509_USER_PROXY": str(proxy), "X509_CERT_DIR": str(certificates),
            "DIRACSYSCONFIG": str(cfg)}


def _runCalls(mode: str, grid, venv: Path, work: Path, cfg: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    fileToSend = work / "to-send.bin"
    fileToSend.write_bytes(bytes(range(256)) * 40)
    settings = {"dummyURL": grid.url("Test/Dummy"), "bobProxy": str(grid.proxies["bob"]),
                "receivedFile": str(work / "received.bin"), "fileToSend": str(fileToSend),
                "adminDN": ADMIN_DN, "adminGroup": "dirac_admin"}
    (work / "settings.json").write_text(json.dumps(settings))
    env = _clientEnvironment(venv, work / "home", grid.instance.proxy, grid.instance.certificatesDir, cfg)
    done = subprocess.run([str(venv / "bin" / "python"), str(CALL_SCRIPT), mode, str(work / "settings.json"),
                           str(work / "results.json")], env=env, capture_output=True, text=True, timeout=300)
    output = f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0 and (work / "results.json").exists(), output
    results = JEncode.decode((work / "results.json").read_text())[0]
    assert "fatal" not in results, results["fatal"]
    return results


@pytest.fixture(scope="module")
def emptyCfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No local configuration at all (DIRAC would otherwise read <sys.base_prefix>/etc/dirac.cfg)."""
    path = tmp_path_factory.mktemp("dirac-client-cfg") / "empty.cfg"
    path.write_text("")
    return path


@pytest.fixture(scope="module")
def csCfg(sqliteGrid, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one option a DIRAC client needs to use our Configuration Service."""
    path = tmp_path_factory.mktemp("dirac-client-cfg") / "dirac.cfg"
    path.write_text("DIRAC\n{\n  Configuration\n  {\n"
                    f"    Servers = {sqliteGrid.url('Configuration/Server')}\n  }}\n}}\n")
    return path


@pytest.fixture(scope="module")
def direct(sqliteGrid, diracVenv, emptyCfg, tmp_path_factory) -> dict:
    """Calls by DIRAC's TornadoClient on full URLs, with only a proxy and a CA directory."""
    return _runCalls("direct", sqliteGrid, diracVenv, tmp_path_factory.mktemp("dirac-direct"), emptyCfg)


@pytest.fixture(scope="module")
def throughCS(sqliteGrid, diracVenv, csCfg, tmp_path_factory) -> dict:
    """DIRAC.initialize() on our Configuration Service, then calls resolved through it."""
    return _runCalls("cs", sqliteGrid, diracVenv, tmp_path_factory.mktemp("dirac-cs"), csCfg)


def _noException(result: object) -> object:
    assert not (isinstance(result, dict) and "exception" in result), result["exception"]
    return result


# -- the calls ------------------------------------------------------------------------------------
def test_the_venv_holds_the_DIRAC_release_asked_for(diracVenv, direct):
    info = json.loads((diracVenv / "dirac-seed-ready.json").read_text())
    assert info["DIRAC"] == direct["DIRACVersion"] == DIRAC_VERSION


def test_dirac_client_add_gets_S_OK_5(direct):
    assert _noException(direct["add"]) == {"OK": True, "Value": 5}


def test_dirac_encoder_writes_what_ours_writes(direct):
    payload = callScript.payload()
    assert direct["payloadEncodedByDIRAC"] == JEncode.encode(payload)
    assert direct["argsEncodedByDIRAC"] == JEncode.encode([payload, "second"])


def test_echo_round_trips_through_both_encoders(direct):
    answer = _noException(direct["echo"])
    assert answer["OK"], answer
    # What DIRAC's decoder gave back, as DIRAC's JEncode defines the types:
    assert direct["echoTypes"] == {"when": "datetime", "day": "date", "pair": ["int", "str"], "raw": "bytes",
                                   "7": "str", "nested": [{"none": "NoneType", "float": "float", "bool": "bool",
                                                           "text": "str"}]}
    assert answer["Value"] == {
        "when": datetime.datetime(2024, 5, 6, 7, 8, 9),  # no sub-seconds on the wire
        "day": datetime.date(2024, 1, 2),
        "pair": [1, "a"],  # tuples travel as lists
        "raw": b"\x00\xffbinary\n",
        "7": "int key",  # so do int keys as strings
        "nested": [{"none": None, "float": 1.5, "bool": True, "text": "\u00e9t\u00e9"}],
    }


def test_compact_answers_decode_in_the_dirac_client_to_the_same_values(direct):
    value = callScript.compactPayload()
    assert b", " not in JEncode.encodeCompact({"OK": True, "Value": value})  # the server answers with orjson's text
    answer = _noException(direct["echoCompact"])
    assert answer == {"OK": True, "Value": JEncode.decode(JEncode.encode(value))[0]}
    assert direct["echoCompactTypes"] == {"when": "datetime", "day": "date", "pair": ["int", "str"], "raw": "bytes",
                                          "files": {"/dirac/f1": {"Size": "int", "Ratio": "float",
                                                                  "Flags": ["bool", "bool"], "Mode": "int"}}}


def test_whoami_shows_our_registry_identity(grid, direct):
    ours = grid.client().whoami()
    assert ours["OK"], ours
    admin = _noException(direct["whoami"])
    assert admin == {"OK": True, "Value": ours["Value"]}
    assert admin["Value"]["DN"] == ADMIN_DN
    assert (admin["Value"]["username"], admin["Value"]["group"]) == ("admin", "dirac_admin")
    assert "ServiceAdministrator" in admin["Value"]["properties"]
    bob = _noException(direct["whoamiBob"])  # TornadoClient(url, proxyLocation=...)
    assert bob["OK"], bob
    assert (bob["Value"]["DN"], bob["Value"]["username"], bob["Value"]["group"]) == (BOB_DN, "bob", "dirac_user")


def test_wrong_argument_type_is_an_S_ERROR_in_the_dirac_client(direct):
    answer = _noException(direct["addWrongType"])
    assert answer["OK"] is False
    assert "add" in answer["Message"] and "int" in answer["Message"]
    assert direct["addWrongTypeIsETYPE"]  # DIRAC's DErrno.cmpError(result, DErrno.ETYPE)


def test_errors_reach_the_dirac_client_with_its_error_codes(direct):
    assert _noException(direct["unknownMethod"])["Errno"] == 38  # ENOSYS, from our HTTP 501
    forbidden = _noException(direct["adminOnlyAsBob"])
    assert (forbidden["OK"], forbidden["Errno"]) == (False, 13)  # EACCES, from our HTTP 403
    notFound = _noException(direct["notFound"])
    assert (notFound["OK"], notFound["Errno"]) == (False, 2)
    assert "nothing-here" in notFound["Message"]
    assert _noException(direct["ping"])["Value"]["name"] == "Test/Dummy"


def test_dirac_receiveFile_gets_streamToClient_bytes(direct):
    assert _noException(direct["receiveFile"]) == {"OK": True, "Value": None}
    assert direct["receivedBytes"] == (b"0123456789abcdef" * 63)[:1000]


@pytest.mark.xfail(strict=True, reason="DIRAC's TornadoClient.sendFile posts the file JEncoded in 'args' "
                                       "([fileId, token, size, bytes]); our endpoint wants an octet-stream body. "
                                       "See docs/dirac-compatibility.md")
def test_dirac_sendFile_reaches_streamFromClient(direct):
    answer = _noException(direct["sendFile"])
    assert answer["OK"], answer
    data = bytes(range(256)) * 40
    assert answer["Value"]["name"] == "sent-by-dirac"
    assert answer["Value"]["size"] == len(data)


# -- DIRAC reading our Configuration Service -----------------------------------------------------
def test_dirac_initialize_syncs_from_our_configuration_service(grid, throughCS):
    assert _noException(throughCS["initialize"]) == {"OK": True}
    assert throughCS["csServers"] == [grid.url("Configuration/Server")]
    assert throughCS["csVersion"] == grid.client("Configuration/Server").getVersion()["Value"]
    compressed = _noException(throughCS["getCompressedDataIfNewer"])
    assert compressed["OK"], compressed
    assert compressed["Value"]["newestVersion"] == throughCS["csVersion"]
    assert "Registry" in compressed["Value"]["data"]


def test_dirac_registry_helpers_read_our_registry(throughCS):
    assert throughCS["usernameForAdminDN"] == {"OK": True, "Value": "admin"}
    assert throughCS["groupsForBob"] == {"OK": True, "Value": ["dirac_user"]}
    assert "CSAdministrator" in throughCS["propertiesOfAdminGroup"]


def test_dirac_resolves_service_urls_from_our_cs_and_calls_them(grid, throughCS):
    assert throughCS["dummyURLs"] == [grid.url("Test/Dummy")]
    assert _noException(throughCS["addThroughCS"]) == {"OK": True, "Value": 5}


def test_dirac_reads_the_group_in_our_proxy(throughCS):
    info = _noException(throughCS["proxyInfo"])
    assert info["OK"], info
    assert info["Value"] == {"identity": ADMIN_DN, "username": "admin", "group": "dirac_admin",
                             "groupProperties": info["Value"]["groupProperties"], "isProxy": True,
                             "validDN": True, "validGroup": True, "VO": "dirac"}
    assert "ProxyManagement" in info["Value"]["groupProperties"]


def test_dirac_reqclient_puts_reads_and_cancels_dirac_requests_on_our_reqmanager(throughCS):
    rms = _noException(throughCS["rms"])
    assert rms["put"]["OK"], rms["put"]
    assert rms["status"] == {"OK": True, "Value": "Waiting"}
    assert rms["owner"] == ["admin", "dirac_admin"], "the owner DIRAC's Request took from the proxy"
    assert rms["digest"].splitlines() == [
        "Name:from-dirac",
        "ReplicateAndRegister:ReplicateAndRegister:Waiting:0:OneBox-SE:/dirac/user/a/admin/from-dirac.dat",
        "ForwardDISET:ForwardDISET:Queued:1"]
    assert rms["file"] == ["/dirac/user/a/admin/from-dirac.dat", "0a0b0c0d", "ADLER32", "Waiting"]
    assert rms["stub"] == [["WorkloadManagement/JobStateUpdate", {}], "setJobParameter", [1, "A", "B"]]
    assert rms["summary"]["OK"] and rms["summary"]["Value"]["Request"]["Waiting"] >= 1
    assert rms["cancel"]["OK"] and rms["statusAfter"] == {"OK": True, "Value": "Canceled"}


def test_dirac_command_line_pings_our_service(grid, diracVenv, csCfg, tmp_path):
    env = _clientEnvironment(diracVenv, tmp_path / "home", grid.instance.proxy, grid.instance.certificatesDir, csCfg)
    done = subprocess.run([str(diracVenv / "bin" / "dirac-framework-ping-service"), "Test", "Dummy"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'OK': True" in done.stdout and "'name': 'Test/Dummy'" in done.stdout, done.stdout
