from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand

from example_asgi.blog.demo_data import DEMO_PASSWORD, DEMO_USERNAME
from example_asgi.blog.pipeline import mode_lines, stall_warning


class Command(BaseCommand):
    help = "Print how to use the demo: its address, the admin login and the pipeline it runs."
    # The pipeline warning is printed below, as a sentence: not twice.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        base = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        self.stdout.write(f"Demo blog: {base}/")
        self.stdout.write(
            f"Admin and the page views dashboard: {base}/admin/ (log in as "
            f"{DEMO_USERNAME} / {DEMO_PASSWORD}, the demo superuser seed_demo created)."
        )
        for line in mode_lines():
            self.stdout.write(line)
        warning = stall_warning()
        if warning is not None:
            self.stderr.write(f"Warning: {warning}")
