"""Helpers for the conformance suite: skipping, media generation, CVAT's job split, emulator ground truth.

Everything here is plain Python; the fixtures that use it live in conftest.py.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The emulator's default user (cvatbench sim --user admin --password admin).
USER = "admin"
PASSWORD = "admin"


def missing(msg: str) -> None:
    """Skip because a prerequisite is missing, or fail when env CI is set (CI must run the suite)."""
    if os.environ.get("CI"):
        pytest.fail(f"{msg} (CI is set, so this is an error)", pytrace=False)
    pytest.skip(msg)


def need_module(name: str):
    """Import a module or skip/fail the whole test module."""
    try:
        return __import__(name)
    except ImportError as e:
        msg = (
            f"{name} is not installed ({e}); run: python3 -m venv .venv && "
            ".venv/bin/pip install -r conformance/requirements.txt"
        )
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg, allow_module_level=True)


# --- media -------------------------------------------------------------------------------------------


def make_images(
    directory: Path,
    count: int,
    *,
    prefix: str = "img",
    size=(64, 48),
    formats=("PNG", "JPEG"),
    noise: bool = False,
) -> list[Path]:
    """Write count small images named so that lexicographical order is creation order.

    Formats alternate between the given ones; each image has its own colour so frames are distinguishable.
    noise=True fills the pixels with random bytes instead, which makes files that do not compress.
    """
    from PIL import Image  # Pillow is a dependency of cvat-sdk

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        fmt = formats[i % len(formats)]
        ext = {"PNG": ".png", "JPEG": ".jpg"}[fmt]
        path = directory / f"{prefix}_{i:03d}{ext}"
        colour = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
        if noise:
            im = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
        else:
            im = Image.new("RGB", size, colour)
        im.save(path, format=fmt)
        paths.append(path)
    return paths


def open_image(data: bytes):
    """Decode image bytes with Pillow (fully, not just the header)."""
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# --- CVAT's split of frames into jobs (API.md §9.5) ---------------------------------------------------


def expected_segments(
    size: int, segment_size: int = 0, overlap: int | None = None, *, video: bool = False
) -> list[tuple[int, int]]:
    """Return the (start_frame, stop_frame) of each segment, as `_generate_segment_params` computes them."""
    seg = segment_size
    if seg == 0 or seg > size:
        seg = size
    ovl = overlap
    if ovl is None:
        ovl = 0 if size <= seg else (5 if video else 0)
    ovl = min(ovl, seg // 2)
    return [(start, min(start + seg - 1, size - 1)) for start in range(0, size - ovl, seg - ovl)]


# --- emulator ground truth ----------------------------------------------------------------------------


def timeline(base_url: str, task_id: int) -> dict:
    """GET /_cvatsim/tasks/{id}/timeline: the emulator's record of what it committed (no auth)."""
    with urllib.request.urlopen(f"{base_url}/_cvatsim/tasks/{task_id}/timeline", timeout=10) as r:
        return json.load(r)


# --- webhook receiver ---------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One POST the receiver got: headers and the raw body bytes (signatures are over raw bytes)."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server collecting webhook deliveries; answers 200 to every POST."""

    server: http.server.ThreadingHTTPServer
    thread: threading.Thread
    deliveries: list[Delivery] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def wait_for(self, predicate, timeout: float = 15.0) -> list[Delivery]:
        """Block until predicate(deliveries) is true (woken by each delivery), or fail after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.deliveries):
                left = deadline - time.monotonic()
                if left <= 0:
                    events = [d.payload.get("event") for d in self.deliveries]
                    pytest.fail(f"webhook deliveries did not arrive in {timeout}s; got events {events}")
                self.cond.wait(left)
            return list(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_receiver() -> Receiver:
    """Start a webhook receiver on a free port of 127.0.0.1."""
    holder: dict[str, Receiver] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server naming)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            rec = holder["r"]
            with rec.cond:
                rec.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
                rec.cond.notify_all()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    rec = Receiver(server=server, thread=thread)
    holder["r"] = rec
    thread.start()
    return rec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- SDK scenarios shared by several test modules ---------------------------------------------------------

IMAGE_QUALITY = 70
POLL_PERIOD_S = 0.1  # status_check_period for the SDK loop; the instant profile finishes at once


def value(x):
    """The string of an SDK enum model (or the string itself: some fields are plain str)."""
    return getattr(x, "value", x)


def create_task(client, name, paths, *, segment_size=0, project_id=None, **data_params):
    """client.tasks.create_from_data (cvat_sdk/core/proxies/tasks.py) with LOCAL files."""
    spec = {"name": name}
    if project_id is None:
        spec["labels"] = [{"name": "car"}, {"name": "person"}]
    else:
        spec["project_id"] = project_id
    if segment_size:
        spec["segment_size"] = segment_size
    return client.tasks.create_from_data(
        spec=spec,
        resources=paths,
        data_params={"image_quality": IMAGE_QUALITY, **data_params},
        status_check_period=POLL_PERIOD_S,
    )


def assert_jobs_match(sim, task, n_frames, segment_size):
    """get_jobs() returns exactly the committed jobs, with CVAT's frame split (API.md §9.5)."""
    jobs = task.get_jobs()
    truth = timeline(sim.url, task.id)
    assert truth["failed"] is False
    ids = sorted(j.id for j in jobs)
    assert ids == sorted(truth["job_ids"]), "get_jobs() must return the committed job ids"
    got = sorted((j.start_frame, j.stop_frame) for j in jobs)
    assert got == expected_segments(n_frames, segment_size)
    for j in jobs:
        assert j.task_id == task.id
        assert j.frame_count == j.stop_frame - j.start_frame + 1
        assert value(j.type) == "annotation"
        assert value(j.state) == "new"
        assert value(j.stage) == "annotation"
    return jobs
