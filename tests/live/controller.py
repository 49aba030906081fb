"""Running ``cfgsync run`` as a subprocess for a test, and reading its probes and metrics."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from live.helpers import cli_env, wait_for


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningController:
    """A ``cfgsync run`` process with its health port and its log file."""

    def __init__(self, *args: str, kubeconfig: Path | str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self._log: IO[str] = tempfile.NamedTemporaryFile("w+", prefix="cfgsync-run-", suffix=".log")  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cfgsync",
                "run",
                "--kubeconfig",
                str(kubeconfig),
                "--health-address",
                "127.0.0.1",
                "--health-port",
                str(self.port),
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**cli_env(), **(env or {})},
        )

    def get(self, path: str) -> tuple[int, str]:
        """GET a health endpoint: (status, body); (0, error) when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for ``/readyz``."""
        wait_for(
            lambda: self.get("/readyz")[0] == 200 or self.process.poll() is not None,
            timeout=timeout,
            what="readyz",
        )
        assert self.process.poll() is None, f"cfgsync run exited early:\n{self.log()}"

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample (0 when absent)."""
        status, text = self.get("/metrics")
        assert status == 200, text
        wanted = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        )
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            if sample == wanted:
                total += float(value)
        return total

    def writes(self) -> float:
        """Write calls made so far (all methods)."""
        return sum(
            self.metric("cfgsync_write_calls_total", method=m) for m in ("POST", "PUT", "PATCH", "DELETE")
        )

    def log(self) -> str:
        """Everything it logged."""
        self._log.flush()
        return Path(self._log.name).read_text(encoding="utf-8")

    def log_records(self) -> list[dict[str, object]]:
        """Its JSON log records."""
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def close(self) -> None:
        """Stop it and drop the log."""
        self.stop()
        self._log.close()


@contextlib.contextmanager
def running(*args: str, kubeconfig: Path | str, ready: bool = True) -> Iterator[RunningController]:
    """Run ``cfgsync run ARGS`` for the duration of a ``with`` block; it must exit cleanly on SIGTERM."""
    controller = RunningController(*args, kubeconfig=kubeconfig)
    try:
        if ready:
            controller.wait_ready()
        yield controller
        code = controller.stop()
        assert code == 0, f"cfgsync run exited with {code} on SIGTERM:\n{controller.log()[-5000:]}"
    except BaseException:
        # pytest shows a failed test's captured output: the controller's own account of what it did.
        controller.stop()
        print(f"--- the log of cfgsync run {' '.join(args)} (its last 20,000 characters) ---")
        print(controller.log()[-20000:])
        raise
    finally:
        controller.close()
