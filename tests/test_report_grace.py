"""A status report in flight when tinklet stops gets ``--report-grace`` seconds, then is abandoned,
for every server transport, against the test Tink server hanging the report."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from tinklet_core.config import load_settings
from tinklet_core.errors import ConfigError, TransportError
from tinklet_core.model import Event, State
from tinklet_core.testing.tink_server import TinkServer
from tinklet_core.transports.builtin import BUILTIN_TRANSPORTS
from tinklet_core.transports.spec import TransportSettings
from tinklet_core.workflow import parse_workflow

WORKER = "grace-worker"
WORKFLOW = {"name": "wf", "tasks": [{"name": "t", "actions": [{"name": "a", "image": "img"}]}]}
CASES = [("v2", "v2"), ("v1", "v1"), ("v1-legacy", "v1-legacy"), ("v1", "auto")]


@pytest.mark.parametrize(("dialect", "protocol"), CASES, ids=[f"{d}-{p}" for d, p in CASES])
def test_a_hung_report_is_abandoned_after_the_grace(dialect: str, protocol: str) -> None:
    grace, stop_after = 0.6, 0.3
    with TinkServer([parse_workflow(WORKFLOW, agent_id=WORKER)], WORKER, protocol=dialect) as server:
        server.hang_reports(1)
        stop = threading.Event()
        spec = next(spec for _name, spec in BUILTIN_TRANSPORTS if spec.name == protocol)
        transport = spec.factory(
            TransportSettings(server.address, WORKER, cancelled=stop, report_grace=grace)
        )
        try:
            action = transport.read()
            assert action is not None and action.action_id == "t/a"
            started = dt.datetime.now(dt.UTC)
            transport.write(Event(action, State.RUNNING, started_at=started))
            threading.Timer(stop_after, stop.set).start()
            begun = time.monotonic()
            with pytest.raises(TransportError) as raised:
                transport.write(Event(action, State.SUCCESS, started, dt.datetime.now(dt.UTC), "success"))
            took = time.monotonic() - begun
        finally:
            transport.close()
        assert raised.value.retryable  # not delivered: the worker must not treat it as refused
        assert "abandoned because tinklet is stopping" in str(raised.value)
        assert stop_after + grace - 0.05 <= took <= stop_after + grace + 1.0
        assert server.states_of("t/a") == [State.RUNNING]  # the server will serve it again


def test_without_a_stop_a_report_is_not_cut_short_by_the_grace() -> None:
    with TinkServer([parse_workflow(WORKFLOW, agent_id=WORKER)], WORKER) as server:
        spec = next(spec for _name, spec in BUILTIN_TRANSPORTS if spec.name == "v2")
        transport = spec.factory(
            TransportSettings(server.address, WORKER, cancelled=threading.Event(), report_grace=0.0)
        )
        try:
            action = transport.read()
            assert action is not None
            transport.write(Event(action, State.RUNNING, started_at=dt.datetime.now(dt.UTC)))
        finally:
            transport.close()
        assert server.states_of("t/a") == [State.RUNNING]


@pytest.mark.parametrize("value", ["-1", "5.5", "30"])
def test_report_grace_outside_0_to_5_seconds_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^--report-grace: must be between 0 and 5 seconds$"):
        load_settings({"report_grace": value}, environ={})
    assert load_settings({}, environ={}).report_grace == 3.0
