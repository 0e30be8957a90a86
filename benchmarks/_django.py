"""Boot the demo project for a benchmark, on a throw-away data folder (never the user's demo data)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup(tasks: str = "immediate") -> Path:
    """Configure Django with the demo settings, a fresh SQLite + LanceDB folder, migrated."""
    data_dir = Path(tempfile.mkdtemp(prefix="semantic-bench-"))
    os.environ["DEMO_DATA_DIR"] = str(data_dir)
    os.environ["DEMO_TASKS"] = tasks
    os.environ["DJANGO_DEBUG"] = "0"  # production-like: no per-query debug logging
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "example"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return data_dir
