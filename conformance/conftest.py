"""Fixtures: one emulator process per session (`cvatbench sim --profile instant`), SDK clients against it.

Run: CVATBENCH_BIN=/path/to/cvatbench .venv/bin/python -m pytest -q conformance
Without the binary or cvat-sdk the suite is skipped, unless env CI is set: then it fails.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from util import PASSWORD, USER, missing  # noqa: E402

LISTENING = re.compile(r"cvatsim listening on (http://\S+)")
START_TIMEOUT_S = 30


@dataclass
class Sim:
    """A running emulator process."""

    url: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen | None
    log: list[str] = field(default_factory=list)  # its stderr, for failure messages

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname

    @property
    def port(self) -> int:
        return urlsplit(self.url).port


def _start_sim(binary: str, profile: str, extra: list[str] | None = None) -> Sim:
    """Start `binary sim` and wait for its one 'listening' line on stderr."""
    cmd = [binary, "sim", "--addr", "127.0.0.1:0", "--profile", profile, *(extra or [])]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def drain():
        # Keep reading so the emulator never blocks on a full stderr pipe.
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, name="sim-stderr", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(left, 0.01))
        except queue.Empty:
            proc.kill()
            pytest.fail(f"{cmd} did not report listening within {START_TIMEOUT_S}s; stderr: {log}", pytrace=False)
        if line is None:
            pytest.fail(f"{cmd} exited with {proc.wait()} before listening; stderr: {log}", pytrace=False)
        m = LISTENING.search(line)
        if m:
            return Sim(url=m.group(1).rstrip("/"), proc=proc, log=log)


def _stop_sim(sim: Sim) -> None:
    sim.proc.terminate()
    try:
        sim.proc.wait(10)
    except subprocess.TimeoutExpired:
        sim.proc.kill()
        sim.proc.wait(5)


def sim_binary() -> str:
    binary = os.environ.get("CVATBENCH_BIN", "")
    if not binary:
        missing("CVATBENCH_BIN is not set; build with `make build` and set CVATBENCH_BIN=$PWD/bin/cvatbench")
    if not os.access(binary, os.X_OK):
        missing(f"CVATBENCH_BIN={binary} is not an executable file; build it with `make build`")
    return binary


@pytest.fixture(scope="session")
def sim():
    """The emulator, instant profile, shared by the whole session.

    CVATBENCH_SIM_URL=http://HOST:PORT uses an emulator that is already running (e.g. behind a validating
    proxy) instead of starting one.
    """
    if url := os.environ.get("CVATBENCH_SIM_URL"):
        yield Sim(url=url.rstrip("/"), proc=None)
        return
    s = _start_sim(sim_binary(), "instant")
    yield s
    _stop_sim(s)


@pytest.fixture(scope="session")
def sdk():
    """The cvat_sdk package (skips or fails when missing)."""
    try:
        import cvat_sdk  # noqa: F401
        import cvat_sdk.core.exceptions  # noqa: F401
    except ImportError as e:
        missing(f"cvat-sdk is not installed ({e}); .venv/bin/pip install -r conformance/requirements.txt")
    return cvat_sdk


@pytest.fixture
def client(sim, sdk):
    """An SDK client logged in with the password (session cookies + CSRF, as make_client does)."""
    from cvat_sdk import make_client

    c = make_client(sim.url, credentials=(USER, PASSWORD))
    yield c
    c.close()


_names = itertools.count(1)


@pytest.fixture
def name(request) -> str:
    """A unique, readable resource name for the current test."""
    return f"conf-{request.node.name[:40]}-{next(_names)}"


@pytest.fixture
def images(tmp_path):
    """Factory writing small images into the test's tmp dir."""
    from util import make_images

    def make(count: int, **kw):
        return make_images(tmp_path / f"media{next(_names)}", count, **kw)

    return make
