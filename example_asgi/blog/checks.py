"""The demo's system check: every manage.py command warns when, in Redis mode, no Celery
worker or beat drains the views (a demo convenience, not a check of the package: it reads
Redis, which a library's checks should not do on every command)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Warning

from .pipeline import WORKER_COMMAND, beat_command, stall_warning


def pipeline_drains(**kwargs: Any) -> list[CheckMessage]:
    warning = stall_warning()
    if warning is None:
        return []
    return [
        Warning(
            warning,
            hint=f"Start them: {WORKER_COMMAND} ; {beat_command()}",
            id="demo.W001",
        )
    ]
