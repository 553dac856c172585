"""Entry points and versions of installed distributions, read without importing importlib.metadata.

Every ``tinklet`` start looks for plugins (the ``tinklet`` entry-point group) and names tinklet's
version. importlib.metadata, with the email package it parses metadata with, costs more of a
start than the reading itself (about 15-25 ms on the test machine, a sixth of ``tinklet plugins
list``). This module reads the same files the same way: in ``sys.path`` order, each directory's
``*.dist-info`` / ``*.egg-info``, the first distribution of a name winning; entry points from its
``entry_points.txt``, name and version from the ``Name:`` and ``Version:`` headers of
``METADATA`` / ``PKG-INFO``. Where distributions can come from elsewhere (a zip or egg file on
``sys.path``, a meta-path finder that finds distributions of its own) importlib.metadata answers
instead, so no third-party plugin is missed.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[.*\]\s*)?$")


@dataclass(frozen=True)
class Distribution:
    """An installed distribution's name (as its metadata spells it) and version."""

    name: str
    version: str


@dataclass(frozen=True)
class EntryPoint:
    """One entry point: ``name = module[:attribute]`` in ``group``, of ``dist``."""

    name: str
    value: str
    group: str
    dist: Distribution | None

    def load(self) -> Any:
        """Import the module and return the object the entry point names."""
        match = _VALUE.match(self.value.strip())
        if match is None:
            raise ValueError(f"entry point {self.name!r} has a malformed value {self.value!r}")
        found: Any = importlib.import_module(match["module"])
        for attribute in (match["attr"] or "").split("."):
            if attribute:
                found = getattr(found, attribute)
        return found


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of every installed distribution, as importlib.metadata
    would list them."""
    if not _plain_paths():
        import importlib.metadata

        return [
            EntryPoint(
                ep.name, ep.value, group, Distribution(ep.dist.name, ep.dist.version) if ep.dist else None
            )
            for ep in importlib.metadata.entry_points(group=group)
        ]
    found: list[EntryPoint] = []
    for path in _metadata_dirs():
        points = _group(os.path.join(path, "entry_points.txt"), group)
        if points:
            dist = _distribution(path)
            found.extend(EntryPoint(name, value, group, dist) for name, value in points)
    return found


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None`` when it is not installed."""
    if not _plain_paths():
        import importlib.metadata

        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None
    wanted = _normalised(distribution)
    for path in _metadata_dirs():
        if _normalised(_stem_name(path)) == wanted:
            return _distribution(path).version
    return None


def _plain_paths() -> bool:
    """True when every distribution is a directory on ``sys.path``: no zip or egg file there and
    no meta-path finder but the standard one that finds distributions."""
    import importlib.machinery

    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder:
            return False
    return not any(entry and os.path.isfile(entry) for entry in sys.path)


def _metadata_dirs() -> Iterator[str]:
    """Each distribution's metadata directory, in ``sys.path`` order, the first of a name only."""
    seen: set[str] = set()
    for entry in sys.path:
        root = entry or "."
        try:
            names = os.listdir(root)  # in the order importlib.metadata reads them
        except OSError:
            continue
        for name in names:
            if not name.endswith(_SUFFIXES):
                continue
            path = os.path.join(root, name)
            key = _normalised(_stem_name(path))
            if key not in seen and os.path.isdir(path):
                seen.add(key)
                yield path


def _stem_name(path: str) -> str:
    """The distribution name a metadata directory's name gives (``tinklet_docker-0.1.0.dist-info``)."""
    return os.path.basename(path).rpartition(".")[0].partition("-")[0]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _group(path: str, group: str) -> list[tuple[str, str]]:
    """``(name, value)`` of each entry point in ``[group]`` of an ``entry_points.txt``."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return []
    if f"[{group}]" not in text:
        return []
    points, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            points.append((name.strip(), value.strip()))
    return points


def _distribution(path: str) -> Distribution:
    """Name and version from the metadata file's headers (the directory's name if it has none)."""
    headers: dict[str, str] = {}
    for file_name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, file_name), encoding="utf-8") as handle:
                for line in handle:
                    if not line.strip():
                        break
                    key, colon, value = line.partition(":")
                    if colon and key in ("Name", "Version"):
                        headers.setdefault(key, value.strip())
        except OSError:
            continue
        break
    stem = os.path.basename(path).rpartition(".")[0]
    name, _, stem_version = stem.partition("-")
    return Distribution(headers.get("Name", name), headers.get("Version", stem_version))
