"""Every node stops cleanly on SIGINT (Ctrl-C, `ros2 launch`) and SIGTERM: exit status
0 within 1 s, and it leaves the ROS graph at once (a peer's node list no longer has
it), instead of dying on the signal and lingering in discovery for its lease time."""

import signal
import time

import pytest

from conftest import write_params

NODES = ["landmark_flow_node", "sim_robot", "sim_range_sensor"]


def node_names(peer):
    return {name for name, _ in peer.node.get_node_names_and_namespaces()}


@pytest.mark.parametrize("name", NODES)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_node_cleanly(peer, start_node, tmp_path, name, sig):
    params = None
    if name == "sim_range_sensor":
        params = write_params(tmp_path, name, {"landmarks": {"ids": ["a"], "positions_m": [1.0, 2.0, 0.0]}})
    node = start_node(name, params_file=params)
    assert peer.spin_until(lambda: name in node_names(peer), timeout_s=20), f"{name} never joined the graph"
    start = time.monotonic()
    node.proc.send_signal(sig)
    code = node.proc.wait(timeout=5)
    elapsed = time.monotonic() - start
    assert code == 0, f"{name} exited with {code} on {sig.name}:\n{node.output()}"
    assert elapsed < 1.0, f"{name} took {elapsed:.2f} s to stop"
    assert peer.spin_until(lambda: name not in node_names(peer), timeout_s=3), f"{name} still in the graph"
