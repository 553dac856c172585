"""The idle worker's dependency floor: what its libraries alone hold, with nothing of tinklet.

Imports what a docker worker in server mode cannot do without (grpcio with the asyncio and ssl it
imports, protobuf with the Tink v2 stubs, docker-py with requests and urllib3; with
``--without-docker`` only the first two, which any runtime's worker needs), then asks the
Tink server at ``ADDRESS`` for ``AGENT``'s next action every ``INTERVAL`` seconds on one plaintext
channel, as the worker does, until it is terminated. ``bench_startup.py`` measures its memory
beside the worker's, in the same run and so in the same page-cache state: whatever the idle
worker holds above this process is tinklet's own.

Run: ``python bench/idle_floor_client.py [--without-docker] ADDRESS AGENT [INTERVAL]``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import grpc

from tinklet_core.protocol import tink_v2_pb2 as pb
from tinklet_core.protocol import tink_v2_pb2_grpc as pb_grpc


def main() -> None:
    """Poll until SIGTERM."""
    args = sys.argv[1:]
    if args[:1] == ["--without-docker"]:
        args = args[1:]
    else:
        import docker  # noqa: F401  (held, as the worker holds the docker runtime's client)
    address, agent = args[0], args[1]
    interval = float(args[2]) if len(args) > 2 else 5.0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.WorkflowServiceStub(channel)
    while not stop.is_set():
        with contextlib.suppress(grpc.RpcError):  # no work for this agent, as the worker is told
            stub.GetAction(pb.ActionRequest(agent_id=agent), timeout=30)
        stop.wait(interval)
    channel.close()


if __name__ == "__main__":
    main()
