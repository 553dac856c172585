"""The metrics endpoint against a hostile neighbour on the same host, over real loopback sockets
to a real worker: headers sent forever are cut off, silent connections are closed (and never
lock a scraper out), resets never print a traceback (a JSON log stays JSON), and the README's
IPv6 form of ``--metrics-address`` serves.
"""

from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_support import free_port, get, start_worker, stop_worker, wait_for

from tinklet_core.testing.sockets import closed_by_peer, reset
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.workflow import parse_workflow

AGENT = "metrics-bounds-test"
IDLE_WORKFLOW = parse_workflow(
    {
        "name": "not-yours",
        "tasks": [{"name": "t", "actions": [{"name": "a", "image": "i", "command": ["true"]}]}],
    },
    agent_id="someone-else",
)  # the worker is told "no work now" and keeps asking
HEAD_START = b"GET /metrics HTTP/1.1\r\nHost: victim\r\n"
HEADER_LINE = b"X-Filler: " + b"a" * 60_000 + b"\r\n"  # under the 64 KiB line limit of http.server
CUT_OFF_BY = 1024 * 1024  # a cut-off within 1 MiB; the old server took ~6 MB per connection
PIECE = 4096
HEAD_SECONDS = 5.0  # the server's bound for a request head to arrive
METRICS_CONTENT = "text/plain; version=0.0.4"


@pytest.fixture
def tink() -> Iterator[str]:
    with TinkServer([IDLE_WORKFLOW], "someone-else") as server:
        yield server.address


def started(tink: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """A worker serving metrics on a free loopback port, up and answering: ``(worker, base url)``."""
    port = free_port()
    worker = start_worker(tink, AGENT, port, *extra)
    base = f"http://127.0.0.1:{port}"
    if not wait_for(lambda: get(f"{base}/metrics")[0] == 200, timeout=30):
        print(stop_worker(worker)[1])
        raise AssertionError("the metrics endpoint never answered")
    return worker, base


def connect(base: str, send_buffer: int = 0) -> socket.socket:
    """A connection to ``base``; with ``send_buffer``, a fixed send buffer that size (no
    autotuning, so bytes sent are close to bytes the server's side took)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if send_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    return sock


def bytes_sent_until_cut_off(base: str) -> tuple[int, bytes]:
    """Send a request head that never ends, in small pieces: how many bytes went out before the
    server answered or closed (a send or a read fails), and the start of its answer if any."""
    sent = 0
    with connect(base, send_buffer=PIECE) as sock:
        try:
            sock.sendall(HEAD_START)
            while sent < 8 * CUT_OFF_BY:
                for start in range(0, len(HEADER_LINE), PIECE):
                    sock.sendall(HEADER_LINE[start : start + PIECE])
                    sent += min(PIECE, len(HEADER_LINE) - start)
                    if select.select([sock], [], [], 0)[0]:
                        return sent, sock.recv(64)
        except OSError:  # reset or broken pipe: the server closed it
            return sent, b""
    return sent, b"never cut off"


def test_headers_sent_forever_are_cut_off_and_metrics_still_answer(tink: str) -> None:
    worker, base = started(tink)
    try:
        results: list[tuple[int, bytes]] = []
        threads = [
            threading.Thread(target=lambda: results.append(bytes_sent_until_cut_off(base))) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(results) == 8
        accepted = sorted(sent for sent, _answer in results)
        assert max(accepted) < CUT_OFF_BY, f"bytes accepted before the cut-off: {accepted}"
        answers = {answer[:13] for _sent, answer in results}
        assert answers <= {b"", b"HTTP/1.1 431 "}, answers  # closed, or told why
        status, body = get(f"{base}/metrics")
        assert status == 200 and "tinklet_worker_up" in body
    finally:
        code, output = stop_worker(worker)
    assert code == 0, output
    assert "Traceback" not in output, output


def test_silent_connections_are_closed_and_never_lock_a_scraper_out(tink: str) -> None:
    worker, base = started(tink)
    silent: list[socket.socket] = []
    try:
        silent = [connect(base) for _ in range(150)]
        time.sleep(0.5)
        # a scraper is served while 150 connections say nothing
        status, body = get(f"{base}/metrics")
        assert status == 200 and "tinklet_worker_up" in body
        began = time.monotonic()
        still_open = [
            s
            for s in silent
            if not closed_by_peer(s, max(0.1, HEAD_SECONDS + 5 - (time.monotonic() - began)))
        ]
        assert not still_open, (
            f"{len(still_open)} of {len(silent)} silent connections still open after {HEAD_SECONDS + 5}s"
        )
        assert get(f"{base}/healthz")[0] == 200
    finally:
        for sock in silent:
            sock.close()
        code, output = stop_worker(worker)
    assert code == 0, output


def test_resets_print_no_traceback_and_the_json_log_stays_json(tink: str) -> None:
    worker, base = started(tink, "--log-format", "json")
    try:
        for _ in range(40):
            whole = connect(base)  # a whole request, reset before the answer is read
            whole.sendall(HEAD_START + b"\r\n")
            reset(whole)
            partial = connect(base)  # half a head, then reset
            partial.sendall(HEAD_START)
            time.sleep(0.005)
            reset(partial)
        idle = connect(base)  # reset while the server waits for anything at all
        time.sleep(0.2)
        reset(idle)
        status, _body = get(f"{base}/metrics")
        assert status == 200
    finally:
        code, output = stop_worker(worker)
    assert code == 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not not_json, f"{len(not_json)} of {len(lines)} lines are not JSON: {not_json[:5]}"


def test_a_request_head_over_the_bound_is_answered_431(tink: str) -> None:
    worker, base = started(tink)
    try:
        with connect(base) as sock:
            sock.sendall(HEAD_START + b"X-Big: " + b"b" * 20_000)  # then nothing: the server decides
            assert sock.recv(64).startswith(b"HTTP/1.1 431 ")
        assert get(f"{base}/metrics")[0] == 200
    finally:
        stop_worker(worker)


def test_the_readme_ipv6_form_serves_and_logs_the_real_port(tink: str) -> None:
    worker = start_worker(tink, AGENT, "[::1]:0")
    assert worker.stdout is not None
    seen = ""
    try:
        serving = re.compile(r"serving metrics on http://\[::1\]:(\d+)/metrics")
        while (match := serving.search(seen)) is None:
            line = worker.stdout.readline()  # the worker logs the line, or fails and exits
            assert line, seen
            seen += line
        port = int(match.group(1))
        assert port != 0
        status, body = get(f"http://[::1]:{port}/metrics")
        assert status == 200 and "tinklet_worker_up" in body
    finally:
        code, output = stop_worker(worker)
    assert code == 0, seen + output
    assert "not supported" not in seen + output
