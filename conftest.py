"""How the test suite is split across pytest-xdist workers (``-n 4 --dist loadgroup``, see
pyproject): every test file runs whole on one worker, unless a test names another group.

Files are the unit because the tests of one file share fixed agent ids, module-scoped engines
and the like; tests of different files that touch the same things on the shared dockerd or Podman
(agent ``local``'s containers, say) carry ``@pytest.mark.xdist_group("local-agent")`` and so
run one after another on one worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """On a worker, ``<basetemp>/gw0`` rather than xdist's ``<basetemp>/popen-gw0`` (before pytest
    reads it): paths in messages stay as short as in a run without workers, and tests of values
    shown only up to a length (the file named in an option's error) see the same text."""
    basetemp = config.option.basetemp
    if hasattr(config, "workerinput") and basetemp and Path(basetemp).name.startswith("popen-"):
        config.option.basetemp = str(Path(basetemp).with_name(Path(basetemp).name.removeprefix("popen-")))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test without an ``xdist_group`` its file as group (before xdist reads them)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.partition("::")[0]))
