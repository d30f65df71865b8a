"""Fixtures for end-to-end tests over real ROS 2 transport.

The peer is rclpy (a real ROS 2 client, no Rust on the other side). Every test gets
its own ROS_DOMAIN_ID and discovery limited to this machine, so tests cannot hear
each other and no DDS packet leaves the host. Waits are bounded waits on a
condition, never fixed sleeps standing in for an assertion.
"""

import itertools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

REPO = Path(__file__).resolve().parents[2]
_domains = itertools.count((os.getpid() * 7) % 60 + 20)


def executable(name):
    """Path of an installed node (colcon install tree, found through PATH)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: run through scripts/with_ros after make build")
    return path


@pytest.fixture
def domain_id():
    return next(_domains) % 101 + 1


@pytest.fixture
def ros_env(domain_id):
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    return env


class Peer:
    """An rclpy node in its own context, on the test's domain."""

    def __init__(self, domain_id, name):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout_s, step_s=0.01):
        """Spins until condition() is true; returns whether it became true in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            self.executor.spin_once(timeout_sec=step_s)
        return condition()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def peer(domain_id):
    p = Peer(domain_id, "test_peer")
    yield p
    p.close()


class NodeProcess:
    def __init__(self, args, env, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return Path(self.log_path).read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def start_node(ros_env, tmp_path):
    started = []

    def start(name, *ros_args, params_file=None):
        args = [executable(name), "--ros-args"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        args += list(ros_args)
        n = NodeProcess(args, ros_env, tmp_path / f"{name}_{len(started)}.log")
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()
        print(f"--- {n.log_path.name} ---\n{n.output()}")


def write_params(tmp_path, node_name, params, file_name="params.yaml"):
    """Writes a ROS 2 parameters file for one node."""
    import yaml

    path = tmp_path / file_name
    path.write_text(yaml.safe_dump({node_name: {"ros__parameters": params}}))
    return path
