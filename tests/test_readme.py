"""Every command block of the README is run as written, by these tests or by CI, or says why not.

A block is marked by the HTML comment right above it: ``<!-- readme: run -->`` (run here, from the
repository root, against a fresh copy of the demo's data), ``<!-- readme: run with the demo server -->``
(run while ``scripts/demo.sh`` serves; only its port is changed), or ``<!-- readme: not run: REASON -->``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- readme: (?P<marker>.*?) -->\n)?```bash\n(?P<code>.*?)```", re.S)


def blocks() -> list[tuple[int, str | None, str]]:
    readme = (ROOT / "README.md").read_text()
    return [
        (readme.count("\n", 0, m.start("code")) + 1, m.group("marker"), m.group("code")) for m in BLOCK.finditer(readme)
    ]


def test_every_block_is_run_or_says_why():
    for line, marker, _ in blocks():
        assert marker is not None, f"README line {line}: mark the block <!-- readme: run --> or say why not"
        known = marker in ("run", "run with the demo server") or re.match(r"not run: \S.{10,}", marker)
        assert known, f"README line {line}: unknown marker {marker!r}"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """What `bash scripts/demo.sh` sets up before serving, in a data folder of the test's own."""
    data = tmp_path_factory.mktemp("demo-data")
    env = {**os.environ, "DEMO_DATA_DIR": str(data)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage = [str(ROOT / ".venv/bin/python"), "example/manage.py"]
    for command in (["migrate", "-v0"], ["loaddata", "demo_catalog", "-v0"], ["semantic_index", "--no-progress"]):
        subprocess.run(manage + command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    return env


def test_the_marked_blocks_run_as_written(demo_data, tmp_path):
    runnable = [(line, code) for line, marker, code in blocks() if marker == "run"]
    assert runnable, "no README block is marked to run"
    for line, code in runnable:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=ROOT,
            env=demo_data,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, f"README block at line {line} failed:\n{result.stdout}\n{result.stderr}"


def test_the_demo_script_serves_the_shop(tmp_path):
    """The Quickstart's first command, as a newcomer runs it (on another port, with its own data)."""
    port = 8765
    env = {**os.environ, "DEMO_DATA_DIR": str(tmp_path / "data"), "DEMO_PORT": str(port)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (tmp_path / "demo.log").open("w")
    server = subprocess.Popen(
        ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/?q=garden+hose", timeout=10) as page:
                    assert page.status == 200 and b"hose" in page.read().lower()
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the demo did not answer within 10 minutes"
                time.sleep(2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/segments/", timeout=30) as page:
            segments = page.read().decode().count('class="segment"')  # demo.sh segmented the products
        assert 6 <= segments <= 12, (tmp_path / "demo.log").read_text()[-3000:]
        for line, marker, code in blocks():
            if marker == "run with the demo server":
                code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                result = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                    timeout=600,
                )
                assert result.returncode == 0, f"README block at line {line}:\n{result.stdout}\n{result.stderr}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
