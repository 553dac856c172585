"""What ``tinklet plugins list [--json]`` prints."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from tinklet_core.config import OptionSpec
from tinklet_core.plugins import LoadedPlugins, describe_plugins


def show_plugins(loaded: LoadedPlugins, accepted: Sequence[OptionSpec], as_json: bool) -> None:
    """Print what ``tinklet plugins list [--json]`` prints (``accepted``: the plugin options
    that were not refused as clashes)."""
    report = plugins_report(loaded, accepted) if as_json else None
    text = json.dumps(report, indent=2) if as_json else "\n".join(plugins_table(loaded, accepted))
    sys.stdout.write(text + "\n")  # one write, as typer's echo did
    sys.stdout.flush()



def plugins_report(loaded: LoadedPlugins, accepted: Sequence[OptionSpec] | None = None) -> dict[str, Any]:
    """What ``tinklet plugins list --json`` prints: plugins, runtimes, transports, failures
    (with ``accepted``, the plugin options that became flags, a refused one is not listed)."""
    taken = None if accepted is None else {(spec.owner, spec.name) for spec in accepted}

    def specs(found: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        unique: dict[str, dict[str, Any]] = {}
        for provided in found.values():
            spec = provided.spec
            unique.setdefault(
                spec.name,
                {
                    "name": spec.name,
                    "aliases": list(spec.aliases),
                    "summary": spec.summary,
                    "plugin": provided.plugin,
                    "options": [
                        f"--{option.name}"
                        for option in spec.options
                        if taken is None or (f"{kind}:{spec.name}", option.name) in taken
                    ],
                },
            )
        return sorted(unique.values(), key=lambda entry: entry["name"])

    return {
        "plugins": [dataclasses.asdict(info) for info in describe_plugins(loaded, taken)],
        "runtimes": specs(loaded.runtimes, "runtime"),
        "transports": specs(loaded.transports, "transport"),
        "failures": list(loaded.failures),
    }


def plugins_table(loaded: LoadedPlugins, accepted: Sequence[OptionSpec] | None = None) -> list[str]:
    """The text form of ``tinklet plugins list``."""
    report = plugins_report(loaded, accepted)
    lines = []
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "PROVIDES", "HOOKS")]
    for info in report["plugins"]:
        provides = [f"runtime {name}" for name in info["runtimes"]]
        provides += [f"transport {name}" for name in info["transports"]]
        rows.append(
            (info["name"], info["distribution"] or "-", info["version"] or "-",
             ", ".join(provides) or "-", ", ".join(info["hooks"]))
        )  # fmt: skip
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
    for kind in ("runtimes", "transports"):
        lines.append("")
        lines.append(f"{kind.upper()}")
        for entry in report[kind]:
            aliases = f" (alias {', '.join(entry['aliases'])})" if entry["aliases"] else ""
            summary = f": {entry['summary']}" if entry["summary"] else ""
            lines.append(f"  {entry['name']}{aliases}{summary}  [plugin {entry['plugin']}]")
    if report["failures"]:
        lines.append("")
        lines.append("FAILURES")
        lines.extend(f"  {failure}" for failure in report["failures"])
    return lines

