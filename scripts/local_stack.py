"""Starting and stopping the local pieces (sandbox, feed service, Airflow) for the demo, `make
run` and `make up`. Every process started here is stopped by `LocalStack.close()`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SANDBOX_API_KEY = "gp_sandbox_key"
DB_SANDBOX_KEY = "db_sandbox_key"
#: Tokens the demo gives converted.in for the sandbox feeds (not secrets: sandbox only).
DEMO_TOKENS = {"CONVERTEDIN_TOKEN_AMPRESS": "demo-token-ampress", "CONVERTEDIN_TOKEN_SEAVIEW": "demo-token-seaview"}


def free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def wait_http(url: str, seconds: float = 60, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2] if len(proc.args) > 2 else proc.args} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing answered at {url} within {seconds:.0f}s")


def giftpro_connection(url: str, api_key: str = SANDBOX_API_KEY) -> str:
    return json.dumps({"conn_type": "http", "host": url, "password": api_key})


def differentbreed_connection(url: str, admin_key: str = DB_SANDBOX_KEY) -> str:
    return json.dumps({"conn_type": "http", "host": f"{url}/client/api/v1", "password": admin_key})


def airflow_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PATH": f"{Path(PYTHON).parent}:{env.get('PATH', '')}",
        }
    )
    env.update(extra or {})
    return env


def prepare_airflow(env: dict) -> None:
    """`airflow db migrate`, once per Airflow home (a stamp remembers)."""
    home = Path(env["AIRFLOW_HOME"])
    stamp = home / ".prepared"
    if stamp.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(PYTHON).parent / "airflow")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, **quiet)
    stamp.touch()


class LocalStack:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen(
            args, env=env or airflow_env(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def sandbox(self, port: int, seed: int = 42, orders: int = 2000) -> str:
        proc = self.start(
            "giftpro-sandbox",
            [PYTHON, "-m", "sandbox.giftpro", "--port", str(port), "--seed", str(seed), "--orders", str(orders)],
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_sandbox/health", proc=proc)
        return url

    def differentbreed_sandbox(self, port: int, seed: int = 42) -> str:
        args = [PYTHON, "-m", "sandbox.differentbreed", "--port", str(port), "--seed", str(seed)]
        proc = self.start("differentbreed-sandbox", args)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_sandbox/health", proc=proc)
        return url

    def feed_service(self, port: int, env: dict) -> str:
        proc = self.start("feed-service", [PYTHON, "-m", "include.feed_service", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", proc=proc)
        return url

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        self.procs.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
