"""The runtime behaviour suite: what every runtime plugin must do, written once.

A runtime plugin's tests subclass :class:`RuntimeBehaviourSuite` (pytest collects the
inherited tests) and say how to reach their runtime::

    class TestDockerBehaviour(RuntimeBehaviourSuite):
        runtime_name = "docker"
        image = "tinklet/busybox:latest"

        def leftovers(self) -> list[str]:
            ...  # ids of objects labelled tinklet.action that still exist

The first group of tests opens the runtime through the plugin manager (as ``tinklet --runtime``
does) and runs single actions: output, env, mounts, exit codes, deadlines, shutdown (and that no
process or container survives it), labels, privilege, pull policy and registry credentials; the
second runs ``python -m tinklet_core`` as a real worker process against the in-process test Tink
server (:mod:`tinklet_core.testing.tink_server`) and against a workflow file. The image must be
busybox-like: ``sh``, ``echo``, ``sleep``, ``cat``, ``env``, ``ls``, ``seq``, ``grep``.

Installing tinklet also gives the same suite without writing a class: ``pytest
--tinklet-runtime NAME`` (see :mod:`tinklet_core.testing.pytest_plugin`).

The tests are grouped by theme, one module each: :mod:`.actions` (single actions and failure
files), :mod:`.proxies`, :mod:`.worker` (worker processes); :mod:`.base` holds what they share.
"""

from tinklet_core.testing.runtime_suite.actions import (
    CAP_SYS_ADMIN,
    SUITE_LOGIN,
    SilentRegistry,
    SingleActionTests,
)
from tinklet_core.testing.runtime_suite.base import AGENT, SuiteBase, make_action
from tinklet_core.testing.runtime_suite.proxies import ProxyTests
from tinklet_core.testing.runtime_suite.worker import WorkerProcessTests

__all__ = [
    "AGENT",
    "CAP_SYS_ADMIN",
    "SUITE_LOGIN",
    "RuntimeBehaviourSuite",
    "SilentRegistry",
    "SuiteBase",
    "make_action",
]


class RuntimeBehaviourSuite(SingleActionTests, ProxyTests, WorkerProcessTests):
    """Inherit this in a plugin's tests; set ``runtime_name`` and ``image``; define ``leftovers``."""
