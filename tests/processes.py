"""Real `promocodes serve` and `promocodes worker` OS processes for the scale-out and fault
tests: started with their own environment, output kept in a log file (shown when a test
fails), stopped with SIGTERM as a process manager would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live import free_port

EXE = Path(sys.executable).parent / "promocodes"


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None
    terminated: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def terminate(self) -> None:
        """SIGTERM, once: a second one could land while the interpreter is finishing,
        after the graceful handler is gone, and kill a process that was exiting cleanly."""
        if self.alive() and not self.terminated:
            self.terminated = True
            self.popen.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait; the exit code (a process that must be killed fails the
        caller's check, since -9 is not a clean exit)."""
        self.terminate()
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def _start(name: str, args: list[str], database_url: str, logs: Path, **env: str) -> Process:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [str(EXE), *args],
            env={
                **os.environ,
                "PROMOCODES_DATABASE_URL": database_url,
                "PROMOCODES_LOG_LEVEL": "warning",
                "PYTHONUNBUFFERED": "1",  # the log file shows what happened up to a crash
                **env,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log)


def start_worker(name: str, database_url: str, logs: Path, **env: str) -> Process:
    return _start(name, ["worker"], database_url, logs, **env)


def wait_started(workers: list[Process], timeout: float = 60) -> None:
    """Until every worker says it started (its database was reachable at start-up)."""
    deadline = time.monotonic() + timeout
    for proc in workers:
        while " started." not in proc.output():
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.name} did not start in {timeout:g} s:\n{proc.output()}")
            time.sleep(0.1)


def start_server(name: str, database_url: str, logs: Path, **env: str) -> Process:
    """`promocodes serve` on a free port; ``wait_ready`` before sending it requests."""
    port = free_port()
    proc = _start(name, ["serve", "--port", str(port)], database_url, logs, **env)
    proc.url = f"http://127.0.0.1:{port}"
    return proc


def wait_ready(servers: list[Process], timeout: float = 60) -> None:
    """Until every server answers /healthz (they start in parallel)."""
    deadline = time.monotonic() + timeout
    for proc in servers:
        while True:
            try:
                if httpx.get(f"{proc.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.name} did not answer in {timeout:g} s:\n{proc.output()}")
            time.sleep(0.2)


def stop_all(processes: list[Process]) -> dict[str, int]:
    """SIGTERM every process at once (they shut down in parallel), then collect exit codes."""
    for p in processes:
        p.terminate()
    return {p.name: p.stop() for p in processes}


def outputs(processes: list[Process]) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.output()[-4000:]}" for p in processes)
