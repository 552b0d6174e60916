#!/usr/bin/env python3
"""Replica check: time the real cvat-sdk 2.73.0 wait loop against the emulator.

Runs `client.tasks.create_from_data(...)` + `task.get_jobs()` N times (status_check_period 0.5 s by default)
against `cvatbench sim --profile cvat-default` (or --url), records the wall latency of each trial, every HTTP
attempt the SDK made (counted below urllib3's retry layer), and the emulator's ground truth
(GET /_cvatsim/tasks/{id}/timeline), and writes one JSON document.

Usage:
  .venv/bin/python conformance/replica.py OUT.json [--bin bin/cvatbench | --url http://127.0.0.1:8080]
      [--n 20] [--period 0.5] [--images 10] [--segment-size 2] [--profile cvat-default]

Not part of `make test`: with cvat-default it takes about N x (creation + period) seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

LISTENING = re.compile(r"cvatsim listening on (http://\S+)")

# --- request counting ---------------------------------------------------------------------------------------


class CallLog:
    """Counts HTTP attempts by templated endpoint and status. Thread-safe enough for one SDK client."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, int]] = []

    def add(self, method: str, url: str, status: int) -> None:
        with self.lock:
            self.calls.append((method, template(url), status))

    def take(self) -> list[tuple[str, str, int]]:
        with self.lock:
            out, self.calls = self.calls, []
        return out


_TEMPLATES = [
    (re.compile(r"^/api/requests/[^/?]+"), "/api/requests/{rq_id}"),
    (re.compile(r"/\d+(?=/|$)"), "/{id}"),
]


def template(url: str) -> str:
    """'/api/tasks/42/data/?x' -> '/api/tasks/{id}/data/' (the query is dropped)."""
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    for rx, repl in _TEMPLATES:
        path = rx.sub(repl, path)
    return path


def install_counter(log: CallLog) -> str:
    """Count every attempt urllib3 sends (retries included) by wrapping HTTPConnectionPool._make_request.

    Falls back to wrapping the SDK's PoolManager.request (one count per logical call) if urllib3's private
    method changes. Returns which hook is in use.
    """
    import urllib3.connectionpool as cp

    orig = getattr(cp.HTTPConnectionPool, "_make_request", None)
    if orig is None:
        return "none"

    def counted(self, conn, method, url, *args, **kwargs):
        resp = orig(self, conn, method, url, *args, **kwargs)
        log.add(method, url, resp.status)
        return resp

    cp.HTTPConnectionPool._make_request = counted
    return "urllib3.HTTPConnectionPool._make_request"


# --- emulator -------------------------------------------------------------------------------------------------


def start_sim(binary: str, profile: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, "sim", "--addr", "127.0.0.1:0", "--profile", profile],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def drain():
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            raise SystemExit(f"emulator exited with {proc.wait()} before listening")
        m = LISTENING.search(line)
        if m:
            return proc, m.group(1).rstrip("/")
    proc.kill()
    raise SystemExit("emulator did not report listening within 30 s")


def timeline(base_url: str, task_id: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"{base_url}/_cvatsim/tasks/{task_id}/timeline", timeout=10) as r:
            return json.load(r)
    except OSError:
        return None  # a real CVAT has no such path


def parse_time(s: str | None) -> float | None:
    """RFC 3339 (nanoseconds allowed) to a POSIX timestamp."""
    if not s:
        return None
    m = re.match(r"^(.*?)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + tz).timestamp()


# --- the run ----------------------------------------------------------------------------------------------------


def summarize(values: list[float]) -> dict:
    if not values:
        return {}
    vs = sorted(values)

    def pct(p):
        return vs[min(len(vs) - 1, max(0, round(p / 100 * len(vs) + 0.5) - 1))]

    return {
        "n": len(vs),
        "min": vs[0],
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "max": vs[-1],
        "mean": statistics.fmean(vs),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="path of the JSON file to write")
    ap.add_argument("--bin", default=os.environ.get("CVATBENCH_BIN", "bin/cvatbench"))
    ap.add_argument("--url", help="use this server instead of starting the emulator")
    ap.add_argument("--profile", default="cvat-default")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--period", type=float, default=0.5, help="SDK status_check_period in seconds")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--segment-size", type=int, default=2)
    ap.add_argument("--user", default="admin")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("--n must be at least 1")
    password = os.environ.get("PASS", "admin")

    sys.path.insert(0, str(Path(__file__).parent))
    from cvat_sdk import make_client
    from cvat_sdk.version import VERSION as SDK_VERSION

    from util import expected_segments, make_images

    log = CallLog()
    hook = install_counter(log)
    proc = None
    url = args.url
    if not url:
        proc, url = start_sim(args.bin, args.profile)
    trials = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = make_images(Path(tmp), args.images)
            client = make_client(url, credentials=(args.user, password))
            setup_calls = log.take()
            for seq in range(args.n):
                t0 = time.time()
                task = client.tasks.create_from_data(
                    spec={"name": f"replica-{seq:03d}", "labels": [{"name": "car"}], "segment_size": args.segment_size},
                    resources=paths,
                    data_params={"image_quality": 70},
                    status_check_period=args.period,
                )
                created = time.time()
                jobs = task.get_jobs()
                t1 = time.time()
                calls = log.take()
                truth = timeline(url, task.id)
                job_ids = sorted(j.id for j in jobs)
                rec = {
                    "seq": seq,
                    "task_id": task.id,
                    "wall_ms": (t1 - t0) * 1000,
                    "create_from_data_ms": (created - t0) * 1000,
                    "get_jobs_ms": (t1 - created) * 1000,
                    "job_ids": job_ids,
                    "jobs_ok": [(j.start_frame, j.stop_frame) for j in sorted(jobs, key=lambda j: j.start_frame)]
                    == expected_segments(args.images, args.segment_size),
                    "requests": len(calls),
                    "requests_by_endpoint": dict(Counter(f"{m} {p} {s}" for m, p, s in calls)),
                    "status_polls": sum(1 for m, p, _ in calls if m == "GET" and p == "/api/requests/{rq_id}"),
                }
                if truth:
                    visible = parse_time(truth.get("jobs_visible_at"))
                    rec["timeline"] = truth
                    rec["matches_timeline"] = sorted(truth.get("job_ids") or []) == job_ids
                    if visible:
                        # Same host, same clock: how long after the commit the SDK held the job ids.
                        rec["detection_delay_ms"] = (t1 - visible) * 1000
                trials.append(rec)
                print(
                    f"trial {seq:3d}: task {task.id} {rec['wall_ms']:8.1f} ms, {rec['requests']} requests, "
                    f"{rec['status_polls']} status polls",
                    file=sys.stderr,
                )
            client.close()
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    doc = {
        "kind": "cvatbench-sdk-replica",
        "generated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "sdk_version": SDK_VERSION,
        "server": url if args.url else f"cvatbench sim --profile {args.profile}",
        "n": args.n,
        "status_check_period_s": args.period,
        "images": args.images,
        "segment_size": args.segment_size,
        "count_hook": hook,
        "setup_requests_by_endpoint": dict(Counter(f"{m} {p} {s}" for m, p, s in setup_calls)),
        "summary": {
            "wall_ms": summarize([t["wall_ms"] for t in trials]),
            "requests": summarize([t["requests"] for t in trials]),
            "status_polls": summarize([t["status_polls"] for t in trials]),
            "detection_delay_ms": summarize([t["detection_delay_ms"] for t in trials if "detection_delay_ms" in t]),
            "all_jobs_ok": all(t["jobs_ok"] and t.get("matches_timeline", True) for t in trials),
        },
        "trials": trials,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0 if doc["summary"]["all_jobs_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
