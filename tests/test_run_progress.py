"""``tinklet run`` on a terminal draws each action's line in place, with pull progress; piped,
it prints the plain lines it always did."""

from __future__ import annotations

from pathlib import Path

from tests.plugin_kit import PROCESS, run_on_a_terminal, tinklet, write_module, write_workflow

PULLER = """
from tinklet_core.hookspecs import hookimpl
from tinklet_core.model import PullPhase, PullProgress


@hookimpl(wrapper=True)
def tinklet_execute_action(context):
    image = context.action.image
    context.pull_progress(PullProgress(image, PullPhase.STARTED))
    mib = 1024 * 1024
    context.pull_progress(PullProgress(image, PullPhase.PROGRESS, current=3 * mib, total=8 * mib))
    context.pull_progress(PullProgress(image, PullPhase.FINISHED))
    return (yield)
"""


def workflow(tmp_path: Path) -> Path:
    return write_workflow(
        tmp_path / "wf.yaml",
        {"name": "first", "image": "img:1", "command": ["sleep", "0.5"]},
        {"name": "second", "image": "img:2", "command": ["sh", "-c", "exit 4"]},
    )


def test_on_a_terminal_each_action_line_changes_in_place(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_puller", PULLER)
    args = ["-p", PROCESS, "-p", "tinklet_puller", "--runtime", "process", "run", str(workflow(tmp_path))]
    code, screen, _ = run_on_a_terminal(args, site)
    assert code == 1, screen
    assert "\x1b[K" in screen, "lines are redrawn in place on a terminal"
    assert "RUNNING  t/first" in screen
    assert "pulling img:1 3.0/8.0 MiB" in screen, screen
    assert "pulling img:2 3.0/8.0 MiB" in screen, screen
    # the final lines are what the terminal shows at the end (each redraw starts with \r)
    lines = screen.replace("\r\n", "\n").split("\n")
    shown = [line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in lines]
    shown = [line for line in shown if line]
    assert shown[0].startswith("SUCCESS  t/first ("), shown
    assert shown[1].startswith("FAILED   t/second (") and "exit code 4" in shown[1], shown
    assert shown[2] == "workflow local: FAILED (1 of 2 succeeded, 0 not run)", shown


def test_not_on_a_terminal_the_plain_lines_stay(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_module(site, "tinklet_puller", PULLER)
    result = tinklet(
        "-p", PROCESS, "-p", "tinklet_puller", "--runtime", "process", "run", str(workflow(tmp_path)),
        site=site,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert lines[0] == "RUNNING  t/first"
    assert lines[1].startswith("SUCCESS  t/first (")
    assert lines[2] == "RUNNING  t/second"
    assert lines[3].startswith("FAILED   t/second (") and "exit code 4" in lines[3]
    assert lines[4] == "workflow local: FAILED (1 of 2 succeeded, 0 not run)"
    assert len(lines) == 5, "no pull progress in plain output"
