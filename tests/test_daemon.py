"""The daemon as an operator runs it: a real subprocess, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO


def test_scheduler_runs_a_first_ingest_and_stops_on_sigterm(workspace: Path) -> None:
    env = {**os.environ, "NEWSDESK_CONFIG": str(workspace / "newsdesk.toml")}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scheduler.py"), "-v"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        index = workspace / "feeds" / "index.html"
        deadline = time.monotonic() + 120
        while not index.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert index.exists(), "the daemon's first ingest+build did not produce feeds"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "daemon_stopping signal=SIGTERM" in stderr
    assert "daemon_stopped" in stderr
