"""Process helpers for the tiers that start real servers (runtime, browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def stop_group(proc: subprocess.Popen, grace: float = 20, *, crash: bool = False) -> None:
    """TERM the process group, then KILL it (only KILL if `crash`); and every descendant."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    steps = [(signal.SIGKILL, 10)] if crash else [(signal.SIGTERM, grace), (signal.SIGKILL, 10)]
    for sig, wait in steps:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    for child in family:  # task processes live in process groups of their own
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
