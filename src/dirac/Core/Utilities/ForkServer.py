"""ForkServer: run Python functions in forked children of a process that has already imported them.

A fresh interpreter that imports the client costs some tenths of a second of CPU and wall time; a
fork of a process that has already imported it costs a few milliseconds. The server is a fresh,
single-threaded interpreter started as ``sys.executable -m dirac.Core.Utilities.ForkServer``: it
never holds its caller's threads, locks or credentials, so forking it is safe. It imports the
``preload`` modules once and calls the ``initializer`` if there is one (e.g. loading the
configuration once for every child: ``dirac.Core.Config:gConfig.loadForForking``), then for each
``run()`` forks a child that

- leads a new session (its own process group, like ``start_new_session=True``),
- takes the given working directory and the given environment (the whole of it),
- writes its standard output and error to the given files (truncated), reads /dev/null,
- keeps no other descriptor of the server, and the default signal handlers,
- calls ``module:function(argv)``: its exit code is the return value (``None`` is 0),
  ``SystemExit`` is honoured, an exception prints its traceback and exits 1.

The server collects its children and sends their exit statuses back; ``run()`` returns a
``ForkedProcess`` that answers like ``subprocess.Popen`` (``pid``, ``poll()``, ``wait(timeout)``
raising ``subprocess.TimeoutExpired``, ``returncode`` negative N for a child ended by signal N).
The server ignores SIGTERM and SIGINT (a stop signal to the caller's process group is the caller's
to act on): it stops when the caller closes the connection or dies, once its children have ended.
Should the server die all the same, its children live on in their sessions: their handles then
watch the pids and report ``LOST_EXIT_CODE`` once they are gone. Messages are JSON lines on a
socket pair.
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dirac.Core.Utilities.Exceptions import DiracError
from dirac.Core.Utilities.Logging import getLogger

log = getLogger("ForkServer")

#: the exit code reported for a child whose server died before it could tell how the child ended
LOST_EXIT_CODE = 255
#: seconds the server may take to import its modules and answer
START_TIMEOUT = 120.0
ANSWER_TIMEOUT = 30.0


class ForkServerError(DiracError):
    """The fork server could not be started or could not start a child."""


class ForkedProcess:
    """A child of the fork server, seen like a ``subprocess.Popen``."""

    def __init__(self, pid: int, args: list[str]):
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _setExit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)  # type: ignore[arg-type]
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


class ForkServer:
    """The caller's side: starts the server process, asks it for children, follows their ends."""

    def __init__(self, preload: Iterable[str] = (), initializer: str | None = None):
        self.preload = list(preload)
        self.initializer = initializer
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._cond = threading.Condition()
        self._sendLock = threading.Lock()
        self._ready = False
        self._answers: dict[int, dict[str, Any]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._nextID = 0

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None and self._sock is not None

    def start(self) -> None:
        """Start the server process (it imports its modules in the background); nothing if it runs."""
        with self._cond:
            if self.alive:
                return
            ours, theirs = socket.socketpair()
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "dirac.Core.Utilities.ForkServer", str(theirs.fileno()),
                     self.initializer or "-", *self.preload],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
            except OSError as exc:
                ours.close()
                raise ForkServerError(f"cannot start the fork server: {exc}") from exc
            finally:
                theirs.close()
            self._sock, self._ready, self._answers = ours, False, {}
            threading.Thread(target=self._read, args=(ours,), name="ForkServerReader", daemon=True).start()
        log.info("fork server started as process %d, preloading %s", self._process.pid, ", ".join(self.preload))

    def run(self, target: str, argv: list[str], cwd: str | Path, env: Mapping[str, str], stdout: str | Path,
            stderr: str | Path) -> ForkedProcess:
        """Fork a child calling ``target`` ('module:function') with ``argv``; its handle. ForkServerError if not."""
        self.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._sock is None, START_TIMEOUT):
                raise ForkServerError(f"the fork server did not answer within {START_TIMEOUT:.0f} s")
            if self._sock is None:
                raise ForkServerError("the fork server stopped")
            self._nextID += 1
            requestID = self._nextID
            sock = self._sock
        request = {"id": requestID, "target": target, "argv": [str(arg) for arg in argv], "cwd": str(cwd),
                   "env": dict(env), "stdout": str(stdout), "stderr": str(stderr)}
        try:
            with self._sendLock:
                sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise ForkServerError(f"cannot reach the fork server: {exc}") from exc
        with self._cond:
            if not self._cond.wait_for(lambda: requestID in self._answers or self._sock is None, ANSWER_TIMEOUT):
                raise ForkServerError(f"the fork server did not start {target} within {ANSWER_TIMEOUT:.0f} s")
            answer = self._answers.pop(requestID, None)
        if answer is None:
            raise ForkServerError("the fork server stopped")
        if "error" in answer:
            raise ForkServerError(f"the fork server could not start {target}: {answer['error']}")
        return answer["child"]

    def _read(self, sock: socket.socket) -> None:
        """Dispatch the server's messages until it goes away."""
        buffer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._dispatch(json.loads(line), sock)
        except (OSError, ValueError) as exc:
            log.error("lost the fork server: %s", exc)
        self._lost(sock)

    def _dispatch(self, message: dict[str, Any], sock: socket.socket) -> None:
        with self._cond:
            if "exited" in message:  # always after the child's "pid" message: the server sends them in that order
                child = self._children.pop(message["exited"], None)
                if child is not None:
                    child._setExit(message["code"])
            elif "ready" in message:
                self._ready = True
            else:
                if "pid" in message:
                    message["child"] = ForkedProcess(message["pid"], [message["target"], *message["argv"]])
                    self._children[message["pid"]] = message["child"]
                self._answers[message["id"]] = message
            self._cond.notify_all()

    def _lost(self, sock: socket.socket) -> None:
        """The server is gone: follow its orphaned children by pid until they end."""
        with self._cond:
            if self._sock is sock:
                self._sock = None
            orphans, self._children = dict(self._children), {}
            self._cond.notify_all()
        sock.close()
        if orphans:
            log.error("the fork server ended with %d child(ren) running: following them by pid", len(orphans))
            threading.Thread(target=_followOrphans, args=(orphans,), name="ForkServerOrphans", daemon=True).start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the server once it has collected its children (up to ``timeout`` s; then it is killed)."""
        with self._cond:
            sock, process = self._sock, self._process
        if process is None:
            return
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_WR)  # the server sees the end of its input
            except OSError:
                pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the fork server did not stop within %.0f s: killing it", timeout)
            process.kill()
            process.wait()


def _followOrphans(orphans: dict[int, ForkedProcess]) -> None:
    while orphans:
        for pid, child in list(orphans.items()):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                child._setExit(LOST_EXIT_CODE)
                del orphans[pid]
            except PermissionError:
                pass
        time.sleep(0.2)


# -- the server process --------------------------------------------------------------------------------
def resolve(target: str) -> Any:
    """The object named by 'package.module:name.attribute'."""
    module, _, path = target.partition(":")
    found: Any = importlib.import_module(module)
    for name in path.split("."):
        found = getattr(found, name)
    return found


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _prepareChild(request: dict[str, Any], serverFiles: list[Any], serverFDs: list[int]) -> None:
    """In the forked child: its own session, signals, directory, files and environment; nothing of the server."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for item in serverFiles:
        item.close()
    for fd in serverFDs:
        os.close(fd)
    os.setsid()
    os.chdir(request["cwd"])
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    stdin = os.open(os.devnull, os.O_RDONLY)
    stdout = os.open(request["stdout"], flags, 0o666)
    stderr = stdout if request["stderr"] == request["stdout"] else os.open(request["stderr"], flags, 0o666)
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
    for fd in {stdin, stdout, stderr}:
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])


def _runChild(request: dict[str, Any], serverFiles: list[Any], serverFDs: list[int], ready: int) -> None:
    """In the forked child: become the payload described by ``request``; never returns.

    ``ready`` is closed once the child is set up (its signals and session are its own, so it can be
    stopped as a group from then on); a failure before that is written there instead."""
    try:
        _prepareChild(request, serverFiles, serverFDs)
    except BaseException as exc:
        os.write(ready, f"{type(exc).__name__}: {exc}".encode() or b"failed")
        os._exit(127)
    os.close(ready)
    code = 1
    try:
        sys.argv = [request["target"], *request["argv"]]
        result = resolve(request["target"])(request["argv"])
        code = 0 if result is None else int(result)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code & 0xFF)


def _reapChildren(sock: socket.socket | None, block: bool = False) -> int:
    """Collect ended children and report them; how many are still running (-1: none left to wait for)."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return -1
        if pid == 0:
            return 0
        if sock is not None:
            try:
                _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})
            except OSError:
                sock = None


def serve(fd: int, initializer: str | None, preload: list[str]) -> int:
    """The server's loop: fork a child per request, report each child's exit, stop at the end of input."""
    sock = socket.socket(fileno=fd)
    for name in preload:
        importlib.import_module(name)
    if initializer:
        resolve(initializer)()
    wakeRead, wakeWrite = os.pipe()
    os.set_blocking(wakeRead, False)
    os.set_blocking(wakeWrite, False)
    signal.set_wakeup_fd(wakeWrite)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    # a stop signal to the caller's process group is for the caller: the server ends when the caller closes
    # the connection or dies, once it has reported how its children ended
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wakeRead, selectors.EVENT_READ)
    _send(sock, {"ready": True, "pid": os.getpid()})
    buffer = b""
    while True:
        for key, _ in selector.select():
            if key.fileobj == wakeRead:
                while True:
                    try:
                        if not os.read(wakeRead, 512):
                            break
                    except BlockingIOError:
                        break
                continue
            data = sock.recv(65536)
            if not data:  # the caller is done: collect the children still running, then stop
                selector.close()
                _reapChildren(sock, block=True)
                return 0
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                _fork(json.loads(line), sock, [selector, sock], [wakeRead, wakeWrite])
        _reapChildren(sock)


def _fork(request: dict[str, Any], sock: socket.socket, serverFiles: list[Any], serverFDs: list[int]) -> None:
    """Fork the child of ``request``; answer with its pid once it is set up, or with why it could not be."""
    readyRead, readyWrite = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(readyRead)
        os.close(readyWrite)
        _send(sock, {"id": request["id"], "error": str(exc)})
        return
    if pid == 0:
        os.close(readyRead)
        _runChild(request, serverFiles, serverFDs, readyWrite)
    os.close(readyWrite)
    with os.fdopen(readyRead, "rb") as ready:
        failure = ready.read()  # until the child closes it
    if failure:
        os.waitpid(pid, 0)
        _send(sock, {"id": request["id"], "error": failure.decode(errors="replace")})
    else:
        _send(sock, {"id": request["id"], "pid": pid, "target": request["target"], "argv": request["argv"]})


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), None if sys.argv[2] == "-" else sys.argv[2], sys.argv[3:]))
