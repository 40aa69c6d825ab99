"""RPC: authenticated calls per second on one server process, HTTPS keep-alive, proxy client certificates.

Callers are threads spread over separate processes, each keeping its own keep-alive connection;
they speak the wire format directly over ``http.client`` so that on a small machine the load
generator leaves the server most of the CPU (our full ``RPCClient`` costs about 1 ms of client
CPU per call on top: ``requests``, JEncode, credentials). The call is ``ping`` on
Configuration/Server: the whole RPC path (TLS, credentials from the Registry, authorization,
argument check, JEncode) with next to no work in the method.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import ssl
import threading
import time
import urllib.parse
from typing import Any

from benchmarks.common import Figure, Grid, percentile

TARGET_CALLS_PER_SECOND = 1500


def _connection(url: str) -> http.client.HTTPSConnection:
    """A keep-alive HTTPS connection showing the user's proxy, checking the server against the CA directory."""
    from dirac.Core.Security import Locations

    context = ssl.create_default_context(capath=Locations.getCAsLocation())
    context.check_hostname = False
    context.load_cert_chain(os.environ["X509_USER_PROXY"])
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=60)


def _clientProcess(url: str, threads: int, seconds: float, start: float, queue: Any) -> None:
    """Callers on lean connections (http.client): the load generator must cost less than the server it loads."""
    body = urllib.parse.urlencode({"method": "ping", "args": "[]"})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    path = urllib.parse.urlsplit(url).path
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        connection = _connection(url)
        connection.request("POST", path, body, headers)  # TLS handshake before the clock starts
        connection.getresponse().read()
        mine, failed = [], 0
        while time.time() < start:
            time.sleep(0.001)
        while time.time() < start + seconds:
            began = time.perf_counter()
            connection.request("POST", path, body, headers)
            answer = connection.getresponse()
            ok = answer.status == 200 and json.loads(answer.read())["OK"] is True  # compact or spaced JSON
            mine.append(time.perf_counter() - began)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put((latencies, errors[0]))


def measure(url: str, concurrency: int, seconds: float) -> tuple[float, float, float, int]:
    """(calls/s, p50 ms, p99 ms, errors) for ``concurrency`` callers spread over the cores."""
    processes = min(concurrency, os.cpu_count() or 1)
    context = multiprocessing.get_context("spawn")  # fresh clients: no state inherited from this process
    queue = context.Queue()
    start = time.time() + 2 + 0.05 * concurrency
    spread = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    workers = [context.Process(target=_clientProcess, args=(url, n, seconds, start, queue)) for n in spread]
    for worker in workers:
        worker.start()
    latencies, errors = [], 0
    for _ in workers:
        mine, failed = queue.get()
        latencies += mine
        errors += failed
    for worker in workers:
        worker.join()
    return len(latencies) / seconds, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000, errors


def run(grid: Grid, quick: bool = False) -> list[Figure]:
    url = f"https://127.0.0.1:{grid.port}/Configuration/Server"
    figures = []
    for concurrency in (1, 8, 32):
        rate, p50, p99, errors = measure(url, concurrency, 3 if quick else 10)
        note = f"{errors} failed call(s)" if errors else ""
        figures += [
            Figure("rpc", f"ping calls/s, {concurrency} client(s)", rate, "calls/s",
                   TARGET_CALLS_PER_SECOND if concurrency > 1 else None, backend=grid.backend, note=note),
            Figure("rpc", f"p50 latency, {concurrency} client(s)", p50, "ms", better="lower", backend=grid.backend),
            Figure("rpc", f"p99 latency, {concurrency} client(s)", p99, "ms", better="lower", backend=grid.backend),
        ]
    return figures
