"""Command line: start a control plane in the background, or stop one.

    python -m controlplane up --kubeconfig FILE     # returns once /readyz is ok; FILE is the admin kubeconfig
    python -m controlplane down --kubeconfig FILE   # stops it and removes its files (and FILE)

(``nox -s controlplane -- up|down --kubeconfig FILE`` runs the same.) ``up`` records the process ids and
the temporary directory in ``FILE.controlplane.json``; ``down`` reads that file, so it works from any
shell. Does I/O: builds on first use, spawns detached processes, writes and removes files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from .build import ControlPlaneError, ensure_binaries
from .harness import ControlPlane, process_running

_STOP_GRACE = 10.0  # seconds a process gets to exit after SIGTERM before SIGKILL
_POLL = 0.05


def state_file(kubeconfig: Path) -> Path:
    """Where ``up`` records what ``down`` must stop: next to the kubeconfig."""
    return kubeconfig.with_name(kubeconfig.name + ".controlplane.json")


def up(kubeconfig: Path) -> int:
    """Start a detached control plane and write its admin kubeconfig to ``kubeconfig``."""
    state_path = state_file(kubeconfig)
    if state_path.exists():
        hint = f"stop it first with `down --kubeconfig {kubeconfig}`"
        print(f"a control plane is already recorded in {state_path}; {hint}", file=sys.stderr)
        return 1
    plane = ControlPlane(ensure_binaries(), detached=True)
    plane.start()
    try:
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plane.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)
        state = {
            "server": plane.server,
            "workdir": str(plane.workdir),
            "pids": plane.pids,
            "restricted_kubeconfig": str(plane.restricted_kubeconfig),
        }
        state_path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        plane.stop()
        raise
    print(f"control plane ready at {plane.server}")
    print(f"  admin kubeconfig:      {kubeconfig}")
    print(f"  restricted kubeconfig: {plane.restricted_kubeconfig}")
    print(f"  stop it with:          nox -s controlplane -- down --kubeconfig {kubeconfig}")
    return 0


def down(kubeconfig: Path) -> int:
    """Stop the control plane recorded next to ``kubeconfig`` and remove its files."""
    state_path = state_file(kubeconfig)
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"no control plane recorded in {state_path}; nothing to stop", file=sys.stderr)
        return 0
    workdir = Path(state["workdir"])
    # The API server first, so it does not spend its shutdown retrying a vanished etcd.
    for name in ("kube-apiserver", "etcd"):
        pid = state["pids"].get(name)
        if pid is not None and _is_ours(pid, workdir):
            _stop_group(pid)
    shutil.rmtree(workdir, ignore_errors=True)
    kubeconfig.unlink(missing_ok=True)
    state_path.unlink()
    print(f"control plane at {state['server']} stopped; its files are removed")
    return 0


def _is_ours(pid: int, workdir: Path) -> bool:
    """True if ``pid`` is still the process ``up`` started (its command line names our work dir)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(workdir).encode() in cmdline


def _stop_group(pid: int) -> None:
    for signum, grace in ((signal.SIGTERM, _STOP_GRACE), (signal.SIGKILL, _STOP_GRACE)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)
        deadline = time.monotonic() + grace
        while process_running(pid) and time.monotonic() < deadline:
            time.sleep(_POLL)
        if not process_running(pid):
            return
    raise ControlPlaneError(f"process {pid} survived SIGKILL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m controlplane", description="Start or stop a throw-away control plane."
    )
    parser.add_argument("action", choices=["up", "down"], help="start in the background, or stop")
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="the admin kubeconfig to write or remove"
    )
    args = parser.parse_args(argv)
    kubeconfig = args.kubeconfig.expanduser().absolute()
    try:
        return up(kubeconfig) if args.action == "up" else down(kubeconfig)
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
