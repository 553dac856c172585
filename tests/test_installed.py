"""tinklet_core.installed finds what importlib.metadata finds: the same entry points, names and
versions, in the same order, from real metadata directories on sys.path."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinklet_core import installed


def as_importlib(group: str) -> list[tuple[str, str, str, str]]:
    return [
        (ep.name, ep.value, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "")
        for ep in importlib.metadata.entry_points(group=group)
    ]


def as_installed(group: str) -> list[tuple[str, str, str, str]]:
    return [
        (ep.name, ep.value, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "")
        for ep in installed.entry_points(group)
    ]


def dist_info(site: Path, directory: str, name: str, version: str, entry_points: str) -> None:
    path = site / directory
    path.mkdir(parents=True)
    metadata = "PKG-INFO" if directory.endswith(".egg-info") else "METADATA"
    (path / metadata).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody: x\n")
    (path / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two directories first on sys.path, with plugins in both (one name in both)."""
    first, second = tmp_path / "first", tmp_path / "second"
    dist_info(
        first,
        "tinklet_extra-2.0.dist-info",
        "tinklet-extra",
        "2.0",
        "[tinklet]\nextra = extra_mod:plugin.inner [opt]\n",
    )
    dist_info(
        second, "tinklet_extra-1.0.dist-info", "tinklet-extra", "1.0", "[tinklet]\nextra_old = old_mod\n"
    )
    dist_info(
        second,
        "Tinklet.Egg.egg-info",
        "Tinklet.Egg",
        "0.3",
        "# comment\n[console_scripts]\nx = y:z\n\n[tinklet]\n egg = egg_mod \n",
    )
    sys.path[0:0] = [str(first), str(second)]
    try:
        yield first, second
    finally:
        sys.path.remove(str(first))
        sys.path.remove(str(second))


def test_the_same_entry_points_as_importlib_metadata_here() -> None:
    for group in ("tinklet", "console_scripts", "pytest11"):
        assert as_installed(group) == as_importlib(group)
        assert as_installed(group), group


def test_the_first_distribution_of_a_name_on_sys_path_wins_as_with_importlib(
    sites: tuple[Path, Path],
) -> None:
    found = as_installed("tinklet")
    assert found == as_importlib("tinklet")
    assert ("extra", "extra_mod:plugin.inner [opt]", "tinklet-extra", "2.0") in found
    assert ("egg", "egg_mod", "Tinklet.Egg", "0.3") in found
    assert not [entry for entry in found if entry[0] == "extra_old"]
    assert installed.version("tinklet-extra") == "2.0" == importlib.metadata.version("tinklet-extra")
    assert installed.version("tinklet_egg") == "0.3"
    assert installed.version("tinklet-not-installed") is None


def test_loading_an_entry_point_follows_its_attribute_path(sites: tuple[Path, Path]) -> None:
    first, _ = sites
    (first / "extra_mod.py").write_text("class plugin:\n    inner = 'the inner object'\n")
    try:
        (extra,) = [ep for ep in installed.entry_points("tinklet") if ep.name == "extra"]
        assert extra.load() == "the inner object"
    finally:
        sys.modules.pop("extra_mod", None)


def test_with_a_zip_on_sys_path_importlib_metadata_answers(tmp_path: Path) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("tinklet_zipped-1.0.dist-info/METADATA", "Name: tinklet-zipped\nVersion: 1.0\n")
        zipped.writestr("tinklet_zipped-1.0.dist-info/entry_points.txt", "[tinklet]\nzipped = zipped_mod\n")
    code = "from tinklet_core import installed; print([e.name for e in installed.entry_points('tinklet')])"
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(archive)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'zipped'" in result.stdout
