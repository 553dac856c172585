"""An in-process Tink server speaking the v2, v1 or v1-legacy protocol, for tests and demos.

It serves one or more :class:`~tinklet_core.workflow.Workflow` objects to one agent on a
loopback port and records every status report, behaving like the upstream Tink server of the
chosen generation as PROTOCOL.md describes it. It speaks one ``protocol`` at a time, so every
other method is answered UNIMPLEMENTED, as a real server of that generation would.

One module per job: :mod:`.server` (:class:`TinkServer`: lifecycle, what it saw, steering),
:mod:`.v2`, :mod:`.v1` and :mod:`.v1_legacy` (each generation's methods and its answers to bad
calls), :mod:`.faults` (refused or hanging reports, held GetAction calls), :mod:`.state` (the
state they share), :mod:`.records` (:class:`Report`, :class:`Call`, :class:`ServerTls`) and
:mod:`.cli` (the command line).

The pid namespace is sent in both ``namespaces.pid`` and the deprecated ``pid`` field, or, with
``legacy_pid=True``, only in ``pid`` (like older servers). An action's ``retries`` is not part
of the protocol and is not sent.

Example::

    workflow = parse_workflow(yaml.safe_load(TEXT), agent_id="agent-1")
    with TinkServer([workflow], "agent-1") as server:
        run_worker_against(server.address)
        assert server.wait_until(lambda: server.workflow_state(workflow.workflow_id).is_final, 10)
        assert server.states_of("provision/hello") == [State.RUNNING, State.SUCCESS]

From a shell (prints each report; Ctrl-C stops it)::

    python -m tinklet_core.testing.tink_server WORKFLOW.yaml --agent ID [--port 42113]
"""

from tinklet_core.testing.tink_server.cli import DEFAULT_CLI_PORT, main
from tinklet_core.testing.tink_server.records import PROTOCOLS, Call, Report, ServerTls
from tinklet_core.testing.tink_server.server import TinkServer

__all__ = ["DEFAULT_CLI_PORT", "PROTOCOLS", "Call", "Report", "ServerTls", "TinkServer", "main"]
