"""The parent's end of bench/webproc.py (its web process and drain worker), and reading a
process's memory and CPU from /proc: what bench/memory.py and bench/scaling.py measure."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT


def rss_bytes(pid: int | None = None) -> int:
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time of every live thread of a process, in nanosecond resolution
    (/proc/<pid>/task/*/schedstat); /proc/<pid>/stat counts in 10 ms ticks."""
    base = Path(f"/proc/{pid or 'self'}/task")
    total = 0
    for task in base.iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue  # a thread that just ended
    return total / 1e9


class Child:
    """The parent's end: one ``python -m bench.webproc`` process and the lines it printed."""

    def __init__(self, role: str, env: dict[str, str], *args: str) -> None:
        self.role = role
        command = [PYTHON, "-m", "bench.webproc", role, *args]
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def last(self, key: str) -> dict[str, Any] | None:
        return next((line for line in reversed(self.lines) if key in line), None)

    def wait_for(self, key: str, test: Callable[[Any], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            line = self.last(key)
            if line is not None and test(line[key]):
                return True
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        return False

    def ask(self, line: str, seconds: float = 600) -> dict[str, Any]:
        """One load of a process started with ``--warmup``; its answer."""
        assert self.process.stdin is not None
        answered = len([x for x in self.lines if "ran" in x])
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        if not self.wait_for(
            "ran", lambda _: len([x for x in self.lines if "ran" in x]) > answered, seconds
        ):
            raise RuntimeError(f"bench.webproc did not answer {line!r}")
        answer = self.last("ran")
        assert answer is not None
        return answer

    def close_input(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def samples(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "rss" in line]

    def finish(self, seconds: float = 600) -> dict[str, Any]:
        """Wait for the end; its last line (``done``), or an error naming the exit."""
        code = self.process.wait(timeout=seconds)
        self._reader.join()
        done = self.last("done")
        if code != 0 or done is None:
            raise RuntimeError(f"bench.webproc {self.role} exited with status {code}")
        return done

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self._reader.join(timeout=5)
