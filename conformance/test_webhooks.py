"""Project webhooks through the SDK's low-level API, delivered to a local receiver (API.md §8)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pytest

from util import create_task, start_receiver, timeline

CREATE_JOB = "create:job"
COMPLETED = "completed:request[create:task]"


@pytest.fixture
def receiver():
    r = start_receiver()
    yield r
    r.close()


def signature_ok(secret: str, d) -> bool:
    """X-Signature-256 is sha256=<hex HMAC-SHA256(secret, raw body)> (API.md §8.6)."""
    got = d.headers.get("X-Signature-256", "")
    want = "sha256=" + hmac.new(secret.encode(), d.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(got, want)


def test_project_webhook_task_creation(sim, client, name, images, receiver):
    from cvat_sdk import models

    secret = secrets.token_hex(16)
    project = client.projects.create({"name": name, "labels": [{"name": "car"}]})
    api = client.api_client.webhooks_api
    webhook, resp = api.create(
        models.WebhookWriteRequest(
            target_url=receiver.url,
            type=models.WebhookType("project"),
            project_id=project.id,
            events=[models.EventsEnum(CREATE_JOB), models.EventsEnum(COMPLETED)],
            content_type=models.WebhookContentType("application/json"),
            secret=secret,
            enable_ssl=False,
            is_active=True,
        )
    )
    assert resp.status == 201
    assert sorted(e.value for e in webhook.events) == sorted([COMPLETED, CREATE_JOB])
    assert webhook.project_id == project.id
    assert "secret" not in webhook.to_dict(), "the secret is never returned"

    # Ping is delivered synchronously inside the call (API.md §8.1).
    delivery, _ = api.create_ping(webhook.id)
    assert delivery.status_code == 200
    (ping,) = receiver.wait_for(lambda ds: len(ds) >= 1)
    assert ping.payload["event"] == "ping"
    assert signature_ok(secret, ping)

    task = create_task(client, name + "-task", images(5), segment_size=2, project_id=project.id)
    job_ids = sorted(timeline(sim.url, task.id)["job_ids"])
    assert len(job_ids) == 3

    deliveries = receiver.wait_for(lambda ds: any(d.payload.get("event") == COMPLETED for d in ds))[1:]
    events = [d.payload["event"] for d in deliveries]
    # Delivery is FIFO through one worker: every create:job, then the completion (API.md §8.4).
    assert events == [CREATE_JOB] * len(job_ids) + [COMPLETED]
    for d in deliveries:
        assert signature_ok(secret, d), f"bad X-Signature-256 on {d.payload['event']}"
        assert d.headers.get("Content-Type", "").startswith("application/json")
        assert d.payload["webhook_id"] == webhook.id

    jobs = [d.payload["job"] for d in deliveries[:-1]]
    assert sorted(j["id"] for j in jobs) == job_ids
    for j in jobs:
        assert j["task_id"] == task.id
        assert j["type"] == "annotation"
        assert j["url"].endswith(f"/api/jobs/{j['id']}")
    done = deliveries[-1].payload["request"]
    assert done["status"] == "finished"
    assert done["operation"]["type"] == "create:task"
    assert done["operation"]["task_id"] == task.id
    assert "sender" not in deliveries[-1].payload

    # Every attempt, the synchronous ping included, is a stored WebhookDelivery (API.md §8.1, §8.6).
    # The row is written after the receiver answered, so the last one may lag the receiver a little.
    for _ in range(100):
        listed, _ = api.list_deliveries(webhook.id)
        if listed.count >= len(deliveries) + 1:
            break
        time.sleep(0.05)
    assert sorted(d.event for d in listed.results) == sorted(["ping", *events]), "GET .../deliveries"
    assert any(d.id == delivery.id for d in listed.results), "the ping's delivery must be listed"
    assert all(d.status_code == 200 for d in listed.results)

    api.destroy(webhook.id)
    project.remove()
