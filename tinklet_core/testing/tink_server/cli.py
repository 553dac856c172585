"""The test Tink server from a shell: serve workflow files to one agent and print each report.

    python -m tinklet_core.testing.tink_server WORKFLOW.yaml --agent ID [--port 42113]

Ctrl-C (or SIGTERM) stops it; ``--exit-when-done`` ends it once every workflow has ended.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tinklet_core.errors import TinkletError
from tinklet_core.model import State
from tinklet_core.testing.tink_server.records import PROTOCOLS, Report, ServerTls
from tinklet_core.testing.tink_server.server import TinkServer
from tinklet_core.workflow import load_workflow

DEFAULT_CLI_PORT = 42113
"""The port the command-line server listens on unless told otherwise (the Tink server's own)."""


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tinklet_core.testing.tink_server",
        description="Serve workflow files to one agent over a Tink protocol and print each report.",
    )
    parser.add_argument("workflows", nargs="+", type=Path, metavar="WORKFLOW.yaml")
    parser.add_argument("--agent", required=True, help="the agent id (tinklet's --identifier)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_CLI_PORT,
        help=f"default {DEFAULT_CLI_PORT} (the Tink server's); 0 picks a free port",
    )
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM); turns TLS on")
    parser.add_argument("--tls-key", type=Path, help="server key (PEM)")
    parser.add_argument("--tls-client-ca", type=Path, help="require client certificates signed by this CA")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="v2", help="protocol to speak (default v2)")
    parser.add_argument(
        "--hardware",
        action="append",
        default=[],
        metavar="MAC_OR_IP=ID",
        help="v1-legacy: ByMAC/ByIP answer ID for this MAC or IP (repeatable)",
    )
    parser.add_argument("--delay", type=float, default=0.0, help="hold each GetAction this many seconds")
    parser.add_argument(
        "--hang-reports",
        type=int,
        default=0,
        metavar="N",
        help="answer nothing to the first N final reports (until the worker gives up), to try a stop",
    )
    parser.add_argument(
        "--exit-when-done",
        action="store_true",
        help="exit once every workflow has ended: status 0 if all succeeded, else 1",
    )
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    if any("=" not in entry for entry in args.hardware):
        parser.error("--hardware takes MAC_OR_IP=ID")
    return args


def _print_report(report: Report) -> None:
    when = (report.execution_stop or report.execution_start or dt.datetime.now(dt.UTC)).strftime("%H:%M:%S")
    line = f"{when} {report.workflow_id} {report.action_id} {report.state.value}"
    if report.duration:
        line += f" ({report.duration})"
    elif report.seconds and report.state.is_final:
        line += f" ({report.seconds}s)"
    if report.message:
        line += ": " + " | ".join(report.message.splitlines())
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the test server in the foreground until Ctrl-C (or until done with --exit-when-done)."""
    args = _parse_args(argv)
    try:
        workflows = [load_workflow(path, agent_id=args.agent) for path in args.workflows]
        tls = ServerTls.from_files(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    except (TinkletError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    server = TinkServer(
        workflows, args.agent, tls=tls, host=args.host, port=args.port,
        get_action_delay=args.delay, on_report=_print_report, protocol=args.protocol,
        hardware=dict(entry.split("=", 1) for entry in args.hardware),
    )  # fmt: skip
    server.hang_reports(args.hang_reports)
    try:
        address = server.start()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = ", ".join(w.workflow_id for w in workflows)
    notes = ", ".join([args.protocol] * (args.protocol != "v2") + ["TLS"] * (tls is not None))
    print(f"serving {names} to agent {args.agent} on {address}{f' ({notes})' if notes else ''}", flush=True)
    try:
        while not stop.wait(0.2):
            if args.exit_when_done and server.all_finished:
                break
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    if args.exit_when_done and server.all_finished:
        return 0 if all(server.workflow_state(w.workflow_id) is State.SUCCESS for w in workflows) else 1
    return 0
