"""The hypercorn SIGTERM guard never swallows a SIGTERM (found attacking the merge of
issue #10).

The guard takes a SIGTERM as "the server is stopping" and hands the grace period to the
lifespan's event loop. A lifespan that started but never shut down, its loop gone (a test
harness that runs only the startup, a script), left the guard in place: the next SIGTERM
was handed to no loop and ignored, and the process ran on until a second one. Now it ends
by SIGTERM as it would have without the guard. A real process, a real signal.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.processes import ROOT, subprocess_env

SCRIPT = """
import asyncio, sys, time
import django

django.setup()
from django.core.handlers.asgi import ASGIHandler


async def startup_only():
    sent = []
    messages = iter([{"type": "lifespan.startup"}])
    done = asyncio.get_running_loop().create_future()

    async def receive():
        return next(messages, None) or await done

    async def send(message):
        sent.append(message["type"])

    task = asyncio.ensure_future(ASGIHandler()({"type": "lifespan"}, receive, send))
    while not sent:
        await asyncio.sleep(0.01)
    task.cancel()


asyncio.run(startup_only())  # the loop is closed; the guard stays
print("ready", flush=True)
time.sleep(120)
print("still running", flush=True)
"""


def test_a_sigterm_after_the_lifespan_loop_is_gone_ends_the_process() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=subprocess_env(""),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"ready\n"
            process.send_signal(signal.SIGTERM)
            try:
                returncode = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                returncode = None
            assert returncode == -signal.SIGTERM, "the SIGTERM was swallowed"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
