"""tinklet's pytest plugin: the plugin test kit (fixture ``tinklet_kit``) and the runtime
behaviour suite (``pytest --tinklet-runtime NAME``).

Installing tinklet registers this module with pytest (entry point group ``pytest11``), so a
runtime plugin's author can test any installed runtime without writing a test class::

    pytest --tinklet-runtime myruntime --tinklet-leftovers tinklet_myruntime.testing:leftovers

``--tinklet-leftovers MODULE:FUNCTION`` names a function ``(agent_id) -> list[str]`` giving the
ids of what the runtime made (labelled ``tinklet.agent``) that still exists: the suite uses it to
prove that nothing is left behind and that running actions are labelled. ``--tinklet-image``
chooses the busybox-like image, ``--tinklet-option NAME=VALUE`` sets one of the runtime's
options, ``--tinklet-plugin MODULE`` loads a plugin module that is not installed, and
``--tinklet-core-option NAME=VALUE`` sets one of tinklet's own options for the suite's runs
(``--tinklet-core-option action-privilege=all-caps`` on a host that refuses privileged
containers). Without ``--tinklet-runtime`` the suite is not collected.

The ``tinklet_kit`` fixture is a :class:`~tinklet_core.testing.kit.PluginKit` for testing a
transport, rewrite, wrapper or observer plugin: it runs a workflow through the plugins a test
names on a real runtime (``--tinklet-kit-runtime``, default ``docker``, with ``--tinklet-image``
and the ``--tinklet-core-option`` values) and returns what was reported. (Subclassing
:class:`~tinklet_core.testing.runtime_suite.RuntimeBehaviourSuite` remains the way to adjust
the suite to a runtime's limits.)

In CI a missing engine must fail, not skip: with the ini setting ``tinklet_strict_skips = true``
and the environment variable ``CI`` true (as CI services set it), every skipped test is reported
as failed, except skips whose reason names an opt-in ``TINKLET_TEST_*`` setting (a real cluster)
and the suite's "not applicable" skips (a feature the runtime does not have by design).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tinklet_core.config import env_flag

if TYPE_CHECKING:
    from tinklet_core.testing.kit import PluginKit

SUITE_MODULE = Path(__file__).with_name("behaviour.py")
OPT_IN = "TINKLET_TEST_"
NOT_APPLICABLE = "not applicable: "


def not_applicable(reason: str) -> None:
    """Skip a test for a feature the runtime does not have by design (allowed in strict CI)."""
    pytest.skip(NOT_APPLICABLE + reason)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--tinklet-*`` options and the ``tinklet_strict_skips`` ini setting."""
    parser.addini(
        "tinklet_strict_skips", "Under CI=true, report skipped tests as failed.", type="bool", default=False
    )
    group = parser.getgroup("tinklet", "tinklet runtime behaviour suite")
    group.addoption("--tinklet-runtime", metavar="NAME", help="Run the behaviour suite against this runtime.")
    group.addoption(
        "--tinklet-leftovers",
        metavar="MODULE:FUNCTION",
        help="Function (agent_id) -> list of ids of what the runtime left for that agent.",
    )
    group.addoption(
        "--tinklet-image", default="tinklet/busybox:latest", metavar="IMAGE", help="A busybox-like image."
    )
    group.addoption(
        "--tinklet-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A runtime option (repeatable).",
    )
    group.addoption(
        "--tinklet-core-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A tinklet option (action-privilege=all-caps…) for the suite and the kit; repeatable.",
    )
    group.addoption(
        "--tinklet-kit-runtime",
        default="docker",
        metavar="NAME",
        help="The runtime the tinklet_kit fixture uses.",
    )
    group.addoption(
        "--tinklet-plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="Load a plugin module (repeatable).",
    )


def core_options(config: pytest.Config) -> dict[str, str]:
    """The ``--tinklet-core-option NAME=VALUE`` values, by option name."""
    return dict(option.split("=", 1) for option in config.getoption("tinklet_core_option"))


@pytest.fixture
def tinklet_kit(request: pytest.FixtureRequest, tmp_path: Path) -> PluginKit:
    """A :class:`~tinklet_core.testing.kit.PluginKit` on the ``--tinklet-kit-runtime`` runtime."""
    from tinklet_core.testing.kit import PluginKit

    config = request.config
    return PluginKit(
        tmp_path / "kit",
        runtime=config.getoption("tinklet_kit_runtime"),
        image=config.getoption("tinklet_image"),
        core_options=core_options(config),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Check the ``--tinklet-*`` options; with ``--tinklet-runtime``, add the suite."""
    for option in config.getoption("tinklet_core_option"):
        if "=" not in option:
            raise pytest.UsageError(
                f"--tinklet-core-option expects NAME=VALUE, got {option.partition('=')[0]!r}"
            )
    if not config.getoption("tinklet_runtime"):
        return
    if not config.getoption("tinklet_leftovers"):
        raise pytest.UsageError(
            "--tinklet-runtime needs --tinklet-leftovers MODULE:FUNCTION, a function (agent_id) -> "
            "list[str] naming what the runtime left behind for that agent"
        )
    for option in config.getoption("tinklet_option"):
        if "=" not in option:
            raise pytest.UsageError(f"--tinklet-option expects NAME=VALUE, got {option.partition('=')[0]!r}")
    config.args.append(str(SUITE_MODULE))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under strict skips in CI, a skip (an engine or tool missing) becomes a failure."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and _strict(item.config):
        reason = _skip_reason(report)
        if OPT_IN not in reason and NOT_APPLICABLE not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped in CI, where every engine and tool must be present: {reason}"
    return report


def _strict(config: pytest.Config) -> bool:
    return bool(config.getini("tinklet_strict_skips")) and env_flag("CI")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)
