"""A whole deployment on one machine, for `make cluster` and the cluster tests: Redis (append-only
persistence), a Ray head, the engine pool from `deploy/serve.yaml`, and stateless front-ends
(`speech-tools serve` joined to the pool, clips and quotas in Redis; the n-th also serves gRPC on
50051 + n, and Wyoming on 10300 + n unless a policy is given without
SPEECH_TOOLS_SERVER__WYOMING_PRINCIPAL), each waited for until ready.

    python -m speech_cluster.local up [--ports 8000,8001] [--state-dir .cache/cluster] [--policy FILE]
    python -m speech_cluster.local down [--state-dir .cache/cluster]

Processes are started detached and their ids kept in the state folder, so `down` (or another shell)
can stop them. Ray runs with token authentication: the token is made at `up` and kept in the state
folder (`ray_auth_token`); every process that joins the cluster gets `ray_env()`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVE_CONFIG = ROOT / "deploy" / "serve.yaml"
# The n-th front-end (from 0) serves gRPC on GRPC_BASE_PORT + n and Wyoming on WYOMING_BASE_PORT + n.
GRPC_BASE_PORT = 50051
WYOMING_BASE_PORT = 10300


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ClusterState:
    """Where everything listens, and the processes to stop."""

    redis_port: int
    ray_port: int
    dashboard_port: int
    front_end_ports: list[int]
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def ray_address(self) -> str:
        return f"127.0.0.1:{self.ray_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"


class LocalCluster:
    """Start and stop the pieces, keeping their state in `state_dir`."""

    def __init__(self, state_dir: Path, bin_dir: Path | None = None, cache_dir: Path | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.cache_dir = cache_dir  # the replicas' engines' files (models, Kokoro's voices), when given
        self.bin = bin_dir or Path(sys.executable).parent
        self.file = self.state_dir / "cluster.json"
        self._processes: dict[int, subprocess.Popen[bytes]] = {}  # started here: reaped by `down`

    @property
    def token_file(self) -> Path:
        """Ray's authentication token for this cluster."""
        return self.state_dir / "ray_auth_token"

    def ray_env(self) -> dict[str, str]:
        """The environment of a process that joins the cluster (the CLI, a front-end, an operator)."""
        return {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_file),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def state(self) -> ClusterState | None:
        """The running cluster's state, if `up` left one."""
        if not self.file.is_file():
            return None
        return ClusterState(**json.loads(self.file.read_text()))

    def up(
        self,
        front_end_ports: list[int],
        num_cpus: int = 4,
        timeout: float = 300,
        policy_file: Path | None = None,
    ) -> ClusterState:
        """Start everything and wait until every front-end is ready; every front-end enforces
        `policy_file` when given (its rates and quotas counted in the shared Redis).

        Raises:
            RuntimeError: a piece did not start in time (what was started is stopped).
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.token_file.write_text(secrets.token_hex(32))
        self.token_file.chmod(0o600)
        state = ClusterState(free_port(), free_port(), free_port(), front_end_ports)
        self._save(state)
        try:
            self._redis(state)
            self._ray(state, num_cpus)
            self._deploy(state, timeout)
            for port in front_end_ports:
                self._front_end(state, port, policy_file)
            for port in front_end_ports:
                _wait_http(f"http://127.0.0.1:{port}/readyz", timeout, f"front-end :{port}")
        except BaseException:
            self.down()
            raise
        return state

    def down(self) -> None:
        """Stop the front-ends, the pool and Ray, and Redis (its data stays in the state folder)."""
        state = self.state()
        if state is None:
            return
        for name, pid in state.pids.items():
            if name.startswith("front-end"):
                self._stop(pid)
        if "ray" in state.pids:
            stop = [str(self.bin / "ray"), "stop", "--force"]
            subprocess.run(stop, capture_output=True, check=False, env=self.ray_env())
        if "redis" in state.pids:
            self._stop(state.pids["redis"])
        self.file.unlink(missing_ok=True)

    def _stop(self, pid: int) -> None:
        process = self._processes.pop(pid, None)
        if process is None:  # started by another `up`: signal it by id
            _stop(pid)
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _save(self, state: ClusterState) -> None:
        self.file.write_text(json.dumps(asdict(state)))

    def _spawn(
        self, state: ClusterState, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> None:
        with (self.state_dir / f"{name}.log").open("ab") as log:  # the child keeps its own handle
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=self.state_dir,
            )
        self._processes[process.pid] = process
        state.pids[name] = process.pid
        self._save(state)

    def start_redis(self) -> None:
        """Start Redis again on its port and data (after `stop_redis`)."""
        state = self.state()
        assert state is not None, "the cluster is not up"
        self._redis(state)

    def stop_redis(self) -> None:
        """Stop Redis (its data is kept)."""
        state = self.state()
        assert state is not None and "redis" in state.pids, "the cluster is not up"
        self._stop(state.pids.pop("redis"))
        self._save(state)

    def _redis(self, state: ClusterState) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: `make cluster` installs Debian's redis-server")
        data = self.state_dir / "redis"
        data.mkdir(exist_ok=True)
        options = {"port": str(state.redis_port), "bind": "127.0.0.1", "dir": str(data)}
        options |= {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
        args = [binary, *(p for name, value in options.items() for p in (f"--{name}", value))]
        self._spawn(state, "redis", args)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", state.redis_port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start; see its log in the state folder")
            time.sleep(0.1)

    def _ray(self, state: ClusterState, num_cpus: int) -> None:
        temp = Path("/tmp") / f"ray-{state.ray_port}"  # socket paths must stay short
        args = [
            str(self.bin / "ray"),
            "start",
            "--head",
            f"--port={state.ray_port}",
            f"--dashboard-port={state.dashboard_port}",
            f"--num-cpus={num_cpus}",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ]
        # Replicas serve calls: they run at the front-ends' priority, not Ray's default for workers
        # (nice 15), which on a shared node lets any busy process delay time to first audio.
        env = {**self.ray_env(), "RAY_worker_niceness": "0"}
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"ray start failed: {done.stderr[-2000:]}")
        state.pids["ray"] = 0  # stopped with `ray stop`
        self._save(state)

    def _deploy(self, state: ClusterState, timeout: float) -> None:
        serve = str(self.bin / "serve")
        config = self.state_dir / "serve.yaml"
        config.write_text(serve_config(self.cache_dir))
        deploy = [serve, "deploy", str(config), "-a", state.dashboard]
        done = subprocess.run(
            deploy, capture_output=True, text=True, check=False, timeout=180, env=self.ray_env()
        )
        if done.returncode != 0:
            raise RuntimeError(f"serve deploy failed: {done.stderr[-2000:]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = subprocess.run(
                [serve, "status", "-a", state.dashboard],
                capture_output=True,
                text=True,
                check=False,
                env=self.ray_env(),
            ).stdout
            apps = [
                line.split(":", 1)[1].strip()
                for line in status.splitlines()
                if line.startswith("    status:")
            ]
            if len(apps) == 2 and all(s == "RUNNING" for s in apps):
                return
            time.sleep(2)
        raise RuntimeError("the engine pool did not reach RUNNING; see `serve status`")

    def _front_end(self, state: ClusterState, port: int, policy_file: Path | None) -> None:
        index = state.front_end_ports.index(port)
        env = {
            "SPEECH_TOOLS_SERVER__GRPC_PORT": str(GRPC_BASE_PORT + index),
            **self.ray_env(),
            "SPEECH_TOOLS_CLUSTER__ENGINES": "ray",
            "SPEECH_TOOLS_CLUSTER__RAY_ADDRESS": state.ray_address,
            "SPEECH_TOOLS_STATE__REDIS_URL": state.redis_url,
            "SPEECH_TOOLS_SERVER__PORT": str(port),
            "SPEECH_TOOLS_SERVER__STATELESS_MCP": "true",  # any front-end serves any MCP request
        }
        if policy_file is not None:
            env["SPEECH_TOOLS_POLICY_FILE"] = str(policy_file.resolve())
        if policy_file is None or os.environ.get("SPEECH_TOOLS_SERVER__WYOMING_PRINCIPAL"):
            # Wyoming calls run as one principal: the local one, or the one named for them
            env["SPEECH_TOOLS_SERVER__WYOMING_PORT"] = str(WYOMING_BASE_PORT + index)
        self._spawn(state, f"front-end-{port}", [str(self.bin / "speech-tools"), "serve"], env)


def _wait_http(url: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} was not ready within {timeout:g} s; see its log in the state folder")


def _stop(pid: int, grace: float = 30) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child: poll for it
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def serve_config(cache_dir: Path | None) -> str:
    """deploy/serve.yaml, its replicas' engines reading their files from `cache_dir` when given (the
    folder this machine's set-up filled: joined models, Kokoro's voices)."""
    import yaml

    config = yaml.safe_load(SERVE_CONFIG.read_text())
    if cache_dir is not None:
        for app in config["applications"]:
            app["args"]["engines"] = {
                **(app["args"].get("engines") or {}),
                "cache_dir": str(cache_dir.resolve()),
            }
    return str(yaml.safe_dump(config, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m speech_cluster.local", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--ports", default="8000,8001", help="front-end ports")
    parser.add_argument("--state-dir", type=Path, default=Path(".cache/cluster"))
    parser.add_argument("--num-cpus", type=int, default=4, help="CPUs Ray may schedule replicas on")
    parser.add_argument(
        "--policy",
        type=Path,
        default=os.environ.get("SPEECH_TOOLS_POLICY_FILE") or None,
        help="policy file every front-end enforces (default: $SPEECH_TOOLS_POLICY_FILE, as `make run`)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=os.environ.get("SPEECH_TOOLS_ENGINES__CACHE_DIR") or None,
        help="the replicas' engines' cache folder (default: $SPEECH_TOOLS_ENGINES__CACHE_DIR, as `make run`)",
    )
    args = parser.parse_args()
    cluster = LocalCluster(args.state_dir, cache_dir=args.cache_dir)
    if args.command == "down":
        cluster.down()
        print("cluster stopped", file=sys.stderr)
        return
    if cluster.state() is not None:
        sys.exit("a cluster is already up (state in --state-dir); run `make cluster-down` first")
    ports = [int(p) for p in args.ports.split(",")]
    state = cluster.up(ports, args.num_cpus, policy_file=args.policy)
    for index, port in enumerate(ports):
        grpc, wyoming = GRPC_BASE_PORT + index, WYOMING_BASE_PORT + index
        print(f"front-end ready: http://127.0.0.1:{port} (gRPC :{grpc}, Wyoming tcp://127.0.0.1:{wyoming})")
    print(f"redis: {state.redis_url}; ray: {state.ray_address}; dashboard: {state.dashboard}")


if __name__ == "__main__":
    main()
