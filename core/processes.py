"""Processes: whether one is alive, and stopping one with its whole tree (the stack's supervisor
and the serving slots both run children that start children of their own)."""

from __future__ import annotations

import contextlib
import os
import signal

# Variables this process may hold that a child must not inherit: prometheus_client's scratch
# folder of multiprocess metrics. Feast sets it when imported (and removes the folder at exit);
# a BentoML slot or the gateway that inherited it would write its metrics into a folder it does
# not own, shared with every sibling, and serve slower for it.
NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")


def child_environment(*overrides: dict[str, str]) -> dict[str, str]:
    """The environment of a child process: this one's, less `NOT_INHERITED`, then `overrides`
    in order (a later one wins)."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    for values in overrides:
        env.update(values)
    return env


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process is not alive; reap it
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited != 0:
            return False
    except ChildProcessError:
        pass
    import psutil

    try:  # nor is another process's zombie (the stack's supervisor watches others' children)
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tree(pid: int) -> list:
    """The process and its descendants. BentoML's workers are children of `bentoml serve` in
    sessions of their own, so signalling the process group alone would orphan them."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal(processes: list, sig: int) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(sig)


def terminate(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the slot's processes (BentoML drains and stops its workers), SIGKILL what is left
    after `grace_s`."""
    import psutil

    processes = _tree(pid)
    _signal(processes, signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    _signal(alive, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def kill_tree(pid: int) -> None:
    """SIGKILL the process and its descendants at once, as a crash would."""
    _signal(_tree(pid), signal.SIGKILL)
