"""Starting and stopping the real processes of a test: ``manage.py db_worker`` and Python modules, each
logging to a file of its own.

Root ignores file permissions, so a read-only folder would be no fault for root's workers. Run as
root, children therefore lose the capabilities that bypass them (CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH, CAP_FOWNER: dropped from the bounding set before exec, so the kernel checks
their file access like any user's). Running them as another user (``nobody``) would not do here:
the interpreter lives under /root, which only root may enter."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "example" / "manage.py"
# linux/capability.h and linux/prctl.h
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3
PR_CAPBSET_DROP = 24


def child_env(settings_dir: Path, settings_module: str, **extra: str) -> dict[str, str]:
    """The environment of a child process: a settings module generated in ``settings_dir``, the
    project and the demo on the path, no network for the model."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONPATH": os.pathsep.join([str(settings_dir), str(ROOT), str(ROOT / "example")]),
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def db_worker_command(worker_id: str, interval: float = 0.1) -> list[str]:
    return [sys.executable, str(MANAGE), "db_worker", "--no-reload", "--no-startup-delay",
            "--interval", str(interval), "--worker-id", worker_id]


def module_command(module: str, *args: object) -> list[str]:
    return [sys.executable, "-m", module, *map(str, args)]


def drops_permission_bypass() -> bool:
    """Whether children lose root's way around file permissions (only when this process is root)."""
    return os.geteuid() == 0


def _drop_permission_bypass() -> None:  # runs in the child, between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def child_kwargs() -> dict:
    """What ``subprocess`` needs to start a child as described in the module's docstring."""
    return {"preexec_fn": _drop_permission_bypass} if drops_permission_bypass() else {}


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (exit {self.process.poll()}) ---\n{text[-chars:]}"


def start(name: str, command: Sequence[str], env: dict[str, str], cwd: Path, log_dir: Path) -> Child:
    """Start ``command`` with stdout and stderr in ``log_dir/name.log``."""
    log = log_dir / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, **child_kwargs())
    return Child(name, process, log)


def stop(children: Iterable[Child], timeout: float = 30) -> None:
    """SIGTERM (a db_worker finishes its task), then SIGKILL what is left after ``timeout``."""
    children = list(children)
    for child in children:
        if child.alive():
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def tails(children: Iterable[Child], chars: int = 3000) -> str:
    return "\n".join(child.tail(chars) for child in children)
