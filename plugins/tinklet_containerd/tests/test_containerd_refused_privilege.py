"""A containerd whose runtime cannot grant what ``--action-privilege`` asks for: the FAILED
report names the way out (issue 22).

The refusal is made, not hoped for: a private containerd started under ``setpriv
--bounding-set -wake_alarm``, so its runc cannot grant ``CAP_WAKE_ALARM``, while tinklet (this
test process) still has it in its bounding set and so asks for it: what a containerd running
with a smaller bounding set than the worker's does.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from containerd_support import PrivateContainerd, containerd_missing, containerd_with_test_image, options
from tinklet_containerd.runtime import ContainerdRuntime

from tinklet_core.containers.capabilities import missing_capabilities
from tinklet_core.model import Action, Outcome, State
from tinklet_core.runtime import ActionContext, Privilege, RuntimeSettings

IMAGE = "tinklet/busybox:latest"
DROPPED = "wake_alarm"


@pytest.fixture(scope="module")
def short_containerd() -> Iterator[PrivateContainerd]:
    """A private containerd (with the test image) lacking ``CAP_WAKE_ALARM`` in its bounding set."""
    missing = containerd_missing() or (shutil.which("setpriv") is None and "setpriv is not installed")
    if missing:
        pytest.skip(str(missing))
    if DROPPED.upper() in missing_capabilities():
        pytest.skip("this process lacks CAP_WAKE_ALARM itself: no refusal to make")
    with containerd_with_test_image(("setpriv", "--bounding-set", f"-{DROPPED}", "--")) as daemon:
        yield daemon


def run(daemon: PrivateContainerd, privilege: Privilege) -> Outcome:
    """Run one action on ``daemon`` with ``privilege``; its outcome."""
    agent = f"test-refused-{uuid.uuid4().hex[:8]}"
    settings = RuntimeSettings(agent_id=agent, options=options(daemon), privilege=privilege)
    runtime = ContainerdRuntime(settings)
    try:
        unique = f"{time.monotonic_ns()}"
        action = Action(f"wf-{unique}", "task", f"action-{unique}", agent, "probe", IMAGE, command=("true",))
        context = ActionContext(
            action, settings, None, threading.Event(), lambda _line: None, lambda _image: None,
            logging.getLogger("test"),
        )  # fmt: skip
        outcome = runtime.tinklet_execute_action(context)
        assert runtime.leftovers() == []
        return outcome
    finally:
        runtime.close()


def test_a_refused_privileged_action_names_all_caps_and_none(short_containerd: PrivateContainerd) -> None:
    outcome = run(short_containerd, Privilege.PRIVILEGED)
    assert outcome.state is State.FAILED
    assert "operation not permitted" in outcome.reason.lower(), outcome.reason
    assert "--action-privilege all-caps" in outcome.reason, outcome.reason
    assert "--action-privilege none" in outcome.reason, outcome.reason


def test_a_refused_all_caps_action_names_none(short_containerd: PrivateContainerd) -> None:
    outcome = run(short_containerd, Privilege.ALL_CAPS)
    assert outcome.state is State.FAILED
    assert "--action-privilege none" in outcome.reason, outcome.reason
    assert "--action-privilege all-caps (" not in outcome.reason, outcome.reason


def test_opening_warns_once_naming_the_capability_and_all_caps(
    short_containerd: PrivateContainerd, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RuntimeSettings(options=options(short_containerd))
    with caplog.at_level(logging.WARNING, logger="tinklet.containerd"):
        ContainerdRuntime(settings).close()
    warnings = [record.getMessage() for record in caplog.records if "privileged" in record.getMessage()]
    assert len(warnings) == 1, warnings
    assert "CAP_WAKE_ALARM" in warnings[0] and "--action-privilege all-caps" in warnings[0]


def test_opening_with_all_caps_does_not_warn(
    short_containerd: PrivateContainerd, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RuntimeSettings(options=options(short_containerd), privilege=Privilege.ALL_CAPS)
    with caplog.at_level(logging.WARNING):
        ContainerdRuntime(settings).close()
    assert not [record for record in caplog.records if "privileged" in record.getMessage()]


def test_none_runs_there(short_containerd: PrivateContainerd) -> None:
    assert run(short_containerd, Privilege.NONE).state is State.SUCCESS
