"""docs/install.md's pip path works as written: the wheels it builds are the files it installs,
and a fresh virtualenv with the core's and tinklet-docker's wheels (dependencies borrowed from
this environment, no index) runs ``tinklet`` with the
docker runtime (and only it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "install.md"


def page_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", PAGE.read_text(), re.S)


def test_the_pages_wheels_install_into_a_fresh_virtualenv_and_run(tmp_path: Path) -> None:
    build = next(block for block in page_blocks() if "pip wheel" in block)
    sources = re.findall(r"(?:^|\s)(\.|plugins/tinklet_\w+)(?=\s|$)", build.replace("\\\n", " "))
    assert sources[0] == "." and "plugins/tinklet_docker" in sources, build
    dist = tmp_path / "dist"
    for source in sources[:2]:  # the core and tinklet-docker, as the page installs them
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT / source)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    install = next(block for block in page_blocks() if "pip install" in block)
    named = re.findall(r"dist/(\S+\.whl)", install)
    built = sorted(path.name for path in dist.glob("*.whl"))
    assert sorted(named) == built, "the page names other wheel files"
    venv = tmp_path / "opt-tinklet"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # the dependencies come from this environment (no index in the test), the wheels from dist/
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "zz_deps.pth").write_text(next(p for p in sys.path if p.endswith("site-packages")) + "\n")
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index",
         *(str(dist / n) for n in named)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    listed = subprocess.run(
        [str(venv / "bin" / "tinklet"), "plugins", "list"], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "tinklet-docker" in listed.stdout and "runtime docker" in listed.stdout
    runtimes = listed.stdout.split("RUNTIMES\n", 1)[1].split("\n\n", 1)[0]
    # only the installed wheels' runtimes (this environment's editable plugins are seen, and fail
    # to import: their code is not on the path)
    assert [line.split()[0] for line in runtimes.splitlines()] == ["docker:"], listed.stdout
    version = subprocess.run([str(venv / "bin" / "tinklet"), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("tinklet 0.1.0"), version
