"""cvat-cli 2.73.0 `task create` against the emulator (API.md §10.2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from util import PASSWORD, USER, assert_jobs_match


def cli(sim, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Run cvat-cli with the password from env PASS, and a private HOME so no saved profile interferes."""
    env = {
        **os.environ,
        "PASS": PASSWORD,
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache"),
    }
    env.pop("CVAT_ACCESS_TOKEN", None)
    cmd = [
        sys.executable, "-m", "cvat_cli",
        "--server-host", f"http://{sim.host}", "--server-port", str(sim.port),
        "--auth", USER,
        *args,
    ]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_task_create(sim, client, name, images, tmp_path):
    pytest.importorskip("cvat_cli")
    paths = images(5)
    res = cli(
        sim, tmp_path,
        "task", "create", name, "local", *map(str, paths),
        "--labels", json.dumps([{"name": "car"}]),
        "--segment_size", "2",
        "--completion_verification_period", "0.1",
    )  # fmt: skip
    assert res.returncode == 0, f"cvat-cli failed ({res.returncode}); stderr:\n{res.stderr}"
    # stdout is exactly the new task id (API.md §10.2).
    out = res.stdout.strip()
    assert out.isdigit(), f"stdout must be the task id, got {res.stdout!r}"
    task = client.tasks.retrieve(int(out))
    assert task.name == name
    assert task.size == 5
    assert task.image_quality == 70  # the CLI default
    assert_jobs_match(sim, task, 5, 2)
    # stderr logs one line per status poll, the last one the final status (API.md §10.2).
    assert f"Task {out} creation status: finished" in res.stderr, res.stderr
