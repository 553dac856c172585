"""An action that does not ask for the host's network gets one of its own through CNI.

The real case runs a whole ``tinklet run`` inside a network namespace this test creates
(``unshare --net``), so the bridge, its address, the NAT rules and the host-local addresses
exist only there (the configuration puts host-local's state in the test's directory): the host's
network is never touched. A web server (busybox httpd) listens in that namespace, and the
action reaches it through the bridge's gateway address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from containerd_support import PrivateContainerd, options
from test_containerd_actions import run
from tinklet_containerd.runtime import ContainerdRuntime

from tinklet_core.model import State
from tinklet_core.runtime import RuntimeSettings

SUBNET_GATEWAY = "10.213.0.1"


def test_without_cni_plugins_the_action_fails_naming_them(
    containerd: PrivateContainerd, agent_id: str, tmp_path: Path
) -> None:
    settings = RuntimeSettings(
        agent_id=agent_id,
        options=options(containerd, containerd_network="cni", containerd_cni_path=str(tmp_path)),
    )
    opened = ContainerdRuntime(settings)
    try:
        outcome, _ = run(opened, ["echo", "never"])
        host, host_lines = run(opened, ["echo", "host network"], network_namespace="host")
    finally:
        opened.close()
    assert outcome.state is State.FAILED
    assert "bridge, host-local" in outcome.reason and str(tmp_path) in outcome.reason
    assert "containernetworking-plugins" in outcome.reason and "\n" not in outcome.reason
    assert (host.state, host_lines) == (State.SUCCESS, ["host network"]), "the host's network needs no CNI"


def cni_plugins() -> str | None:
    """A directory holding the bridge and host-local CNI plugins, if the host has one."""
    for directory in ("/opt/cni/bin", "/usr/lib/cni"):
        if all(os.access(f"{directory}/{name}", os.X_OK) for name in ("bridge", "host-local")):
            return directory
    return None


def test_an_action_gets_a_network_of_its_own_in_a_namespace_of_ours(
    containerd: PrivateContainerd, tmp_path: Path
) -> None:
    plugins = cni_plugins()
    tools = [tool for tool in ("unshare", "ip", "iptables", "busybox") if shutil.which(tool) is None]
    if plugins is None or tools:
        pytest.skip(
            f"needs CNI plugins (containernetworking-plugins) and {', '.join(tools) or 'nothing else'}"
        )
    conf_dir = tmp_path / "cni.d"
    conf_dir.mkdir()
    network = {
        "cniVersion": "1.0.0",
        "name": "tinklet-test",
        "plugins": [{
            "type": "bridge", "bridge": "tinkletest0", "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                     "ranges": [[{"subnet": "10.213.0.0/24", "gateway": SUBNET_GATEWAY}]],
                     "routes": [{"dst": "0.0.0.0/0"}]},
        }],
    }  # fmt: skip
    (conf_dir / "10-test.conflist").write_text(json.dumps(network))
    site = tmp_path / "site"
    site.mkdir()
    (site / "hello").write_text("hello through the bridge\n")
    script = (
        "cat /etc/hostname; grep -c eth0 /proc/net/dev; "
        f"wget -q -O - http://{SUBNET_GATEWAY}:8080/hello; grep -v localhost /etc/hosts"
    )
    action = {"name": "own-network", "image": "tinklet/busybox:latest", "command": ["sh", "-c", script]}
    workflow = {"name": "net", "tasks": [{"name": "t", "actions": [action]}]}
    (tmp_path / "workflow.yaml").write_text(yaml.safe_dump(workflow))
    flags = options(containerd, containerd_network="cni", containerd_cni_path=plugins,
                    containerd_cni_conf_dir=str(conf_dir))  # fmt: skip
    flag_list = [f"--{key.replace('_', '-')}={value}" for key, value in flags.items()]
    workflow_file = str(tmp_path / "workflow.yaml")
    worker = [
        sys.executable,
        "-m",
        "tinklet_core",
        "run",
        workflow_file,
        "--runtime",
        "containerd",
        *flag_list,
    ]
    # In the new namespace: loopback up, a web server on all addresses, then the worker.
    inside = 'ip link set lo up && busybox httpd -p 8080 -h "$1" && shift && exec "$@"'
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", inside, "sh", str(site), *worker],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    output = [line.split("| ", 1)[-1] for line in done.stderr.splitlines() if "| " in line]  # the log
    assert "hello through the bridge" in output, done.stderr
    assert output[1] == "1", f"one eth0: {done.stdout}"
    address = next(line.split()[0] for line in output if line.startswith("10.213.0."))
    assert output[0] in next(line for line in output if line.startswith(address)), "hosts names the container"
    leases = [path.name for path in (tmp_path / "ipam" / "tinklet-test").glob("10.*")]
    assert leases == [], "the address was given back (CNI DEL)"
    assert containerd.ctr("containers", "ls", "-q").stdout.split() == []
