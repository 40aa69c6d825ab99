"""Calls made by the real DIRAC client library (from PyPI) against a dirac-seed server.

This file runs with the Python of a throwaway virtualenv holding the ``DIRAC`` package; it
imports DIRAC and never our own package. ``tests/integration/test_dirac_client.py`` runs it
and checks what it wrote. Usage::

    python dirac_client_call.py MODE SETTINGS.json RESULTS.json

MODE is ``direct`` (``TornadoClient`` on full URLs, no configuration at all) or ``cs``
(``DIRAC.initialize()`` against our Configuration Service, then calls resolved through it).
SETTINGS.json holds the URLs and file names the calls need. RESULTS.json receives one entry
per call, written with DIRAC's own JSON encoder so that datetimes and bytes keep their types.
Nothing here stops at the first failure: each call's outcome, or the exception it raised,
is recorded under its name.

The module can be imported without DIRAC (the test takes ``payload()`` from here).
"""

from __future__ import annotations

import datetime
import json
import sys
import traceback
import zlib
from collections.abc import Callable
from typing import Any


def payload() -> dict:
    """A value exercising every JEncode rule: datetimes, dates, tuples, bytes, int keys, nesting."""
    return {
        "when": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456),
        "day": datetime.date(2024, 1, 2),
        "pair": (1, "a"),
        "raw": b"\x00\xffbinary\n",
        7: "int key",
        "nested": [{"none": None, "float": 1.5, "bool": True, "text": "\u00e9t\u00e9"}],
    }


def compactPayload() -> dict:
    """A value our server answers with orjson's compact text (str keys only, no None, ASCII only)."""
    tagged = {key: value for key, value in payload().items() if key in ("when", "day", "pair", "raw")}
    return tagged | {"files": {"/dirac/f1": {"Size": 2**40, "Ratio": 0.1, "Flags": [True, False], "Mode": 420}}}


def _clean(result: Any) -> Any:
    """An S_OK/S_ERROR without the client-side decorations (stubs and call stacks)."""
    if isinstance(result, dict) and "OK" in result:
        return {key: value for key, value in result.items() if key not in ("rpcStub", "CallStack")}
    return result


def _record(results: dict, name: str, call: Callable[[], Any]) -> None:
    try:
        results[name] = _clean(call())
    except Exception:  # the test shows the traceback; the other calls still run
        results[name] = {"exception": traceback.format_exc()}


def _typeNames(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _typeNames(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_typeNames(item) for item in value]
    return type(value).__name__


def runDirect(settings: dict, results: dict) -> None:
    """TornadoClient with explicit URLs: only X509_USER_PROXY and X509_CERT_DIR are set."""
    from DIRAC.Core.Tornado.Client.TornadoClient import TornadoClient
    from DIRAC.Core.Utilities import DErrno
    from DIRAC.Core.Utilities.JEncode import encode

    url = settings["dummyURL"]
    client = TornadoClient(url)

    _record(results, "add", lambda: client.add(2, 3))
    _record(results, "addWrongType", lambda: client.add("2", 3))
    results["addWrongTypeIsETYPE"] = DErrno.cmpError(results["addWrongType"], DErrno.ETYPE)

    data = payload()
    results["payloadEncodedByDIRAC"] = encode(data)
    results["argsEncodedByDIRAC"] = encode((data, "second"))

    def echo() -> Any:
        answer = client.echo(data)
        if answer.get("OK"):
            results["echoTypes"] = _typeNames(answer["Value"])
        return answer

    _record(results, "echo", echo)

    def echoCompact() -> Any:
        answer = client.echo(compactPayload())
        if answer.get("OK"):
            results["echoCompactTypes"] = _typeNames(answer["Value"])
        return answer

    _record(results, "echoCompact", echoCompact)
    _record(results, "whoami", lambda: client.whoami())
    bobClient = TornadoClient(url, proxyLocation=settings["bobProxy"])
    _record(results, "whoamiBob", lambda: bobClient.whoami())
    _record(results, "adminOnlyAsBob", lambda: bobClient.adminOnly())
    _record(results, "unknownMethod", lambda: client.noSuchMethod())
    _record(results, "notFound", lambda: client.missing("nothing-here"))
    _record(results, "ping", lambda: client.ping())

    def receiveFile() -> Any:
        answer = client.receiveFile(settings["receivedFile"], 1000)
        with open(settings["receivedFile"], "rb") as received:
            results["receivedBytes"] = received.read()
        return answer

    _record(results, "receiveFile", receiveFile)
    _record(results, "sendFile", lambda: client.sendFile(settings["fileToSend"], "sent-by-dirac"))


def runWithConfigurationService(settings: dict, results: dict) -> None:
    """DIRAC.initialize() against our CS (DIRACSYSCONFIG names its URL), then CS-resolved calls."""
    import DIRAC

    try:
        DIRAC.initialize()  # syncs from the CS servers and checks whoami on them
        results["initialize"] = {"OK": True}
    except Exception:
        results["initialize"] = {"exception": traceback.format_exc()}
        return

    from DIRAC import gConfig
    from DIRAC.ConfigurationSystem.Client.ConfigurationClient import ConfigurationClient
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData
    from DIRAC.ConfigurationSystem.Client.Helpers import Registry
    from DIRAC.ConfigurationSystem.Client.PathFinder import getServiceURLs
    from DIRAC.Core.Base.Client import Client
    from DIRAC.Core.Security.ProxyInfo import getProxyInfo

    results["csVersion"] = gConfigurationData.getVersion()
    results["csServers"] = gConfig.getServersList()
    results["dummyURLs"] = getServiceURLs("Test/Dummy")
    results["usernameForAdminDN"] = Registry.getUsernameForDN(settings["adminDN"])
    results["groupsForBob"] = Registry.getGroupsForUser("bob")
    results["propertiesOfAdminGroup"] = Registry.getPropertiesForGroup(settings["adminGroup"])
    _record(results, "addThroughCS", lambda: Client(url="Test/Dummy").add(2, 3))

    def compressedData() -> Any:
        answer = ConfigurationClient().getCompressedDataIfNewer("0")
        if answer.get("OK"):
            value = dict(answer["Value"])
            value["data"] = zlib.decompress(value["data"]).decode()
            answer["Value"] = value
        return answer

    _record(results, "getCompressedDataIfNewer", compressedData)

    def proxyInfo() -> Any:
        answer = getProxyInfo()
        if answer.get("OK"):
            keep = ("identity", "username", "group", "groupProperties", "isProxy", "validDN", "validGroup", "VO")
            answer["Value"] = {key: answer["Value"].get(key) for key in keep}
        return answer

    _record(results, "proxyInfo", proxyInfo)
    _record(results, "rms", requestRoundTrip)


def requestRoundTrip() -> Any:
    """DIRAC's Request objects through DIRAC's ReqClient: put, status, peek, summary, cancel."""
    from DIRAC.Core.Utilities import DEncode
    from DIRAC.RequestManagementSystem.Client.File import File
    from DIRAC.RequestManagementSystem.Client.Operation import Operation
    from DIRAC.RequestManagementSystem.Client.ReqClient import ReqClient
    from DIRAC.RequestManagementSystem.Client.Request import Request

    request = Request()
    request.RequestName = "from-dirac"
    replicate = Operation()
    replicate.Type = "ReplicateAndRegister"
    replicate.TargetSE = "OneBox-SE"
    opFile = File()
    opFile.LFN = "/dirac/user/a/admin/from-dirac.dat"
    opFile.Checksum = "0a0b0c0d"
    opFile.ChecksumType = "ADLER32"
    replicate.addFile(opFile)
    forward = Operation()
    forward.Type = "ForwardDISET"
    forward.Arguments = DEncode.encode((("WorkloadManagement/JobStateUpdate", {}), "setJobParameter", [1, "A", "B"]))
    request.addOperation(replicate)
    request.addOperation(forward)
    client = ReqClient()
    put = client.putRequest(request, useFailoverProxy=False)
    answer: dict = {"put": _clean(put)}
    if not put.get("OK"):
        return answer
    requestID = put["Value"]
    answer["status"] = _clean(client.getRequestStatus(requestID))
    peeked = client.peekRequest(requestID)
    if peeked.get("OK"):
        read = peeked["Value"]
        answer["digest"] = read.getDigest()["Value"]
        answer["owner"] = [read.Owner, read.OwnerGroup]
        answer["file"] = [read[0][0].LFN, read[0][0].Checksum, read[0][0].ChecksumType, read[0][0].Status]
        answer["stub"] = DEncode.decode(read[1].Arguments)[0]
    else:
        answer["peek"] = _clean(peeked)
    answer["summary"] = _clean(client.getDBSummary())
    answer["cancel"] = _clean(client.cancelRequest(requestID))
    answer["statusAfter"] = _clean(client.getRequestStatus(requestID))
    return answer


def main(argv: list[str]) -> int:
    mode, settingsPath, resultsPath = argv[1:4]
    with open(settingsPath) as settingsFile:
        settings = json.load(settingsFile)
    results: dict = {}
    try:
        import DIRAC

        results["DIRACVersion"] = DIRAC.version
        {"direct": runDirect, "cs": runWithConfigurationService}[mode](settings, results)
    except Exception:
        results["fatal"] = traceback.format_exc()
    try:
        from DIRAC.Core.Utilities.JEncode import encode
    except Exception:  # DIRAC itself did not import: plain JSON is enough to report that
        def encode(data: Any) -> str:
            return json.dumps(data, default=repr)

    with open(resultsPath, "w") as resultsFile:
        resultsFile.write(encode(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
