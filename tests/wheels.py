"""Building a project's wheel the way pip would, for tests of what a wheel ships."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path


def build_wheel(project: Path, directory: Path) -> Path:
    """Build the wheel of the project in ``project`` (no dependencies) into ``directory``; its path."""
    before = set(directory.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(directory), str(project)],
        check=True,
        capture_output=True,
    )
    (wheel,) = set(directory.glob("*.whl")) - before
    return wheel


def wheel_files(wheel: Path) -> set[str]:
    """The paths of the files inside ``wheel``."""
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())
