"""Test settings: the demo project on an in-memory SQLite DB; each test gets its own LanceDB folder
(see conftest). The encoder is the real bundled model, wrapped to count calls."""

import tempfile
from pathlib import Path

from demo.settings import *  # noqa: F403

DATA_DIR = Path(tempfile.mkdtemp(prefix="semantic-catalog-tests-"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "ATOMIC_REQUESTS": True,
        "TEST": {"NAME": ":memory:"},
    }
}
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SEMANTIC_CATALOG = {
    "DATA_DIR": DATA_DIR,
    "ENCODER": {"BACKEND": "tests.encoders.CountingEncoder", "OPTIONS": {"device": "cpu"}},
}
