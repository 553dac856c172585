"""How the test suite is split across pytest-xdist workers when asked to: ``-n 4 --dist loadfile``
(not the default yet, see pyproject) runs every test file whole on one worker, four at a time.

Files are the unit because the tests of one file share fixed agent ids, module-scoped engines,
the one-file executable and the like. Tests of different files must not touch the same things on
the shared engines: a test about what agent ``local`` leaves behind has a private dockerd
(tests/test_local_runs.py). ``loadfile``, not ``loadgroup``: with pytest 9.2, pytest-xdist 3.8's
loadgroup no longer sees the groups (it renames each test's ``_nodeid``, which pytest 9.2 no longer
reads), and every test of a file went to any worker; ``loadfile`` needs no marks.
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
