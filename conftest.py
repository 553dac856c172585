"""How the test suite is split across pytest-xdist workers: pyproject's ``-n 4 --dist loadfile``
runs every test file whole on one worker, four files at a time, with one exception: the files
that run actions on Podman all go to one worker, one after the other (:data:`PODMAN_FILES`).

Files are the unit because the tests of one file share fixed agent ids, module-scoped engines,
the one-file executable and the like. Tests of different files must not touch the same things on
the shared engines: each uses an agent id of its own (``tinklet run`` is agent ``local`` unless
told otherwise, and a run removes that agent's stopped containers, so the tests that run on the
shared engines pass ``--identifier``; tests about agent ``local`` itself have a private dockerd,
tests/test_local_runs.py).

Podman is the exception because Podman 4.3 (Debian 12's) cannot be shared that way: its image
inspect fails while another process removes an image that shares a layer with the inspected one
(the pull tests push the busybox test image to a registry and pull and remove the copy), and its
API service then answers ``HTTP 500: runtime error: invalid memory address or nil pointer
dereference`` (the handler formats the error with the inspect result it did not get). One file at
a time on Podman, and no image of the suite is removed while another is inspected.

``loadfile``, not xdist's ``loadgroup`` and ``xdist_group`` marks: with pytest 9.2, pytest-xdist
3.8's loadgroup no longer sees the groups (it renames each test's ``_nodeid``, which pytest 9.2
no longer reads), and the controller that schedules sees only test ids, never marks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PODMAN_SCOPE = "podman (one file at a time, see conftest.py)"
#: The test files that run actions, pulls or ``podman`` commands on this host's Podman storage.
PODMAN_FILES = frozenset(
    {
        "plugins/tinklet_podman/tests/test_podman_actions.py",
        "plugins/tinklet_podman/tests/test_podman_faults.py",
        "plugins/tinklet_podman/tests/test_podman_pull.py",
        "plugins/tinklet_podman/tests/test_podman_service.py",
        "plugins/tinklet_podman/tests/test_podman_suite.py",
        "tests/test_engine_faults.py",
        "tests/test_engine_wait.py",
        "tests/test_refused_privilege.py",
        "tests/test_registry_helper_pull.py",
        "tests/test_registry_pull.py",
        "tests/test_secret_markers.py",
        "tests/test_security_docker_config.py",
        "tests/test_worker_v1_dialects.py",
    }
)


def file_of(nodeid: str) -> str:
    """The file part of a test id (``tests/test_x.py::test_y[p]`` -> ``tests/test_x.py``)."""
    return nodeid.split("::", 1)[0]


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or the one Podman scope."""
    file = file_of(nodeid)
    return PODMAN_SCOPE if file in PODMAN_FILES else file


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadfile``: xdist's file scheduling with :func:`scope_of` as the unit."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # only where xdist runs the suite

    class FilesPodmanTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return FilesPodmanTogether(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """On a worker, ``<basetemp>/gw0`` rather than xdist's ``<basetemp>/popen-gw0`` (before pytest
    reads it): paths in messages stay as short as in a run without workers, and tests of values
    shown only up to a length (the file named in an option's error) see the same text."""
    basetemp = config.option.basetemp
    if hasattr(config, "workerinput") and basetemp and Path(basetemp).name.startswith("popen-"):
        config.option.basetemp = str(Path(basetemp).with_name(Path(basetemp).name.removeprefix("popen-")))
