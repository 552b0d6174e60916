"""cvat-sdk 2.73.0 against the emulator: authentication, task creation, jobs, requests, projects, failures,
chunks. Each test names the SDK code path it drives (cvat_sdk/core/...)."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest

from util import IMAGE_QUALITY, PASSWORD, USER, assert_jobs_match, create_task, open_image, timeline, value

# --- authentication (cvat_sdk/core/client.py: Client.login, make_client) ----------------------------------


def test_password_login(client):
    # make_client did GET /api/server/about and POST /api/auth/login; login() asserted both cookies.
    assert str(client.get_server_version()).startswith("2.73")
    me, _ = client.api_client.users_api.retrieve_self()
    assert me.username == USER
    assert "sessionid" in client.api_client.cookies and "csrftoken" in client.api_client.cookies


def test_personal_access_token(sim, sdk):
    from cvat_sdk import make_client, models
    from cvat_sdk.api_client import ApiClient, Configuration, exceptions

    # A PAT is created with Basic (or session) auth, never with a PAT (API.md §2.1).
    basic = Configuration(host=sim.url, username=USER, password=PASSWORD)
    with ApiClient(basic) as api:
        token, resp = api.auth_api.create_access_tokens(
            models.AccessTokenWriteRequest(name="conformance", read_only=False, expiry_date=None)
        )
        assert resp.status == 201
        assert token.value, "the 201 must carry the token value (shown once)"

    with make_client(sim.url, access_token=token.value) as c:
        me, _ = c.api_client.users_api.retrieve_self()
        assert me.username == USER
        assert "sessionid" not in c.api_client.cookies, "a PAT needs no login call"
        # Unsafe methods work with Bearer alone (no CSRF).
        project = c.projects.create({"name": "pat-project", "labels": [{"name": "car"}]})
        project.remove()

    with make_client(sim.url, access_token="not-a-valid-token") as c:
        with pytest.raises(exceptions.UnauthorizedException):
            c.api_client.users_api.retrieve_self()


# --- task creation and jobs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_images,segment_size",
    [
        (7, 3),  # 3 jobs: [0-2] [3-5] [6-6]
        (23, 2),  # 12 jobs: get_jobs() walks two pages of 10 (page=1, page=2)
        (4, 0),  # segment_size 0: one job over all frames
    ],
)
def test_create_from_data_jobs(sim, client, name, images, n_images, segment_size):
    paths = images(n_images)
    task = create_task(client, name, paths, segment_size=segment_size)

    assert task.size == n_images
    assert task.image_quality == IMAGE_QUALITY
    assert task.media_type == "image"
    assert task.mode == "annotation"
    assert task.dimension == "2d"
    effective = segment_size if 0 < segment_size <= n_images else n_images
    assert task.segment_size == effective
    assert task.overlap == 0
    jobs = assert_jobs_match(sim, task, n_images, segment_size)
    assert task.jobs["count"] == len(jobs)
    # task.get_meta() reads GET /api/tasks/{id}/data/meta: the frames in upload order, with their sizes.
    meta = task.get_meta()
    assert meta.size == n_images and meta.image_quality == IMAGE_QUALITY
    assert [f.name for f in meta.frames] == [p.name for p in sorted(paths)]
    assert all(f.width > 0 and f.height > 0 for f in meta.frames)


def test_upload_without_waiting_then_poll_request(sim, client, name, images):
    from cvat_sdk import models

    paths = images(5)
    task = client.tasks.create({"name": name, "labels": [{"name": "car"}], "segment_size": 2})
    assert task.jobs["count"] == 0
    task.upload_data(paths, params={"image_quality": IMAGE_QUALITY}, wait_for_completion=False)

    # upload_data() does not return the rq_id: find it through GET /api/requests (API.md §6.2).
    found, _ = client.api_client.requests_api.list(action="create", target="task", task_id=task.id)
    assert found.count == 1, f"expected one creation request for task {task.id}, got {found.count}"
    rq = found.results[0]
    assert rq.operation.type == "create:task"
    assert rq.operation.task_id == task.id

    # Low-level status loop, bounded (the instant profile finishes almost at once).
    finished = models.RequestStatus.allowed_values[("value",)]["FINISHED"]
    seen = []
    for _ in range(200):
        req, resp = client.api_client.requests_api.retrieve(rq.id)
        assert resp.status == 200
        seen.append(value(req.status))
        if value(req.status) == finished:
            break
        assert value(req.status) in ("queued", "started"), f"unexpected status {value(req.status)}"
        time.sleep(0.05)
    else:
        pytest.fail(f"request {rq.id} did not finish; statuses {seen}")

    assert req.message == ""
    assert req.created_date <= req.started_date <= req.finished_date
    assert req.expiry_date is not None and req.expiry_date > req.finished_date
    task.fetch()
    assert_jobs_match(sim, task, 5, 2)


def test_tus_upload(sim, client, name, images, monkeypatch):
    """Files above the SDK's request size go through TUS (API.md §5.3): create, PATCH chunks, Upload-Finish."""
    import cvat_sdk.core.uploading as uploading

    monkeypatch.setattr(uploading, "TUS_CHUNK_SIZE", 4096)  # several PATCH calls per file
    paths = images(3, noise=True, formats=("PNG",), size=(96, 64))
    assert all(p.stat().st_size > 3 * 4096 for p in paths)
    task = client.tasks.create({"name": name, "labels": [{"name": "car"}], "segment_size": 2})
    url = client.api_map.make_endpoint_url(task.api.create_data_endpoint.path, kwsub={"id": task.id})
    # max_request_size=1: no file fits a multipart batch, so every file is sent with TUS.
    resp = uploading.DataUploader(client, max_request_size=1).upload_files(url, paths, image_quality=IMAGE_QUALITY)
    rq_id = json.loads(resp.data)["rq_id"]
    client.wait_for_completion(rq_id, status_check_period=0.1)
    task.fetch()
    assert task.size == 3
    assert_jobs_match(sim, task, 3, 2)


# --- projects and removal ------------------------------------------------------------------------------


def test_project_task_removal(sim, client, name, images):
    from cvat_sdk.api_client import exceptions

    project = client.projects.create({"name": name, "labels": [{"name": "car"}, {"name": "bike"}]})
    assert project.name == name

    task = create_task(client, name + "-task", images(3), segment_size=2, project_id=project.id)
    assert task.project_id == project.id
    jobs = assert_jobs_match(sim, task, 3, 2)
    assert all(j.project_id == project.id for j in jobs)
    assert [t.id for t in project.get_tasks()] == [task.id]

    task.remove()
    with pytest.raises(exceptions.NotFoundException):
        client.tasks.retrieve(task.id)
    for j in jobs:
        with pytest.raises(exceptions.NotFoundException):
            client.jobs.retrieve(j.id)

    project.remove()
    with pytest.raises(exceptions.NotFoundException):
        client.projects.retrieve(project.id)


def test_project_jobs_listing(sim, client, name, images):
    """The listing project-poll makes (GET /api/jobs?project_id&page_size&sort=id, paged) through the SDK's own
    api_client: every job of every task of the project, ascending, across pages, and nothing of another project;
    and the requests list filtered by project and status, which project-poll reads for failed creations."""
    project = client.projects.create({"name": name, "labels": [{"name": "car"}]})
    other = client.projects.create({"name": name + "-other", "labels": [{"name": "car"}]})
    tasks = [create_task(client, f"{name}-{i}", images(3), segment_size=1, project_id=project.id) for i in range(3)]
    create_task(client, name + "-elsewhere", images(2), segment_size=1, project_id=other.id)
    want = sorted(j.id for t in tasks for j in t.get_jobs())
    assert len(want) == 9

    got, page = [], 1
    while True:
        data, _ = client.api_client.jobs_api.list(project_id=project.id, page_size=4, page=page, sort="id")
        got += [j.id for j in data.results]
        assert all(j.project_id == project.id for j in data.results)
        if data.next is None:
            break
        page += 1
    assert got == want and page == 3 and data.count == 9

    failed, _ = client.api_client.requests_api.list(action="create", target="task", project_id=project.id, status="failed")
    assert failed.count == 0
    finished, _ = client.api_client.requests_api.list(action="create", target="task", project_id=project.id, status="finished")
    assert sorted(r.operation.task_id for r in finished.results) == sorted(t.id for t in tasks)
    for p in (project, other):
        p.remove()


# --- failure path (API.md §5.5, §9.4) ------------------------------------------------------------------


def test_corrupt_image_fails_request(sim, client, name, images, tmp_path):
    from cvat_sdk.core.exceptions import BackgroundRequestException

    paths = images(2)
    bad = tmp_path / "zz_corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    with pytest.raises(BackgroundRequestException) as ei:
        create_task(client, name, [*paths, bad], segment_size=1)
    message = str(ei.value)
    # CVAT's failed request message is the formatted exception: "<ExceptionType>: <text>\n" (API.md §6.1).
    assert re.match(r"^[A-Za-z_][\w.]*: \S", message), f"not a formatted exception: {message!r}"
    assert message.endswith("\n"), f"CVAT's message ends with a newline: {message!r}"

    (found, _) = client.api_client.requests_api.list(action="create", target="task", status="failed")
    failed = [r for r in found.results if r.operation.task_id is not None]
    assert any(r.message == message for r in failed), "GET /api/requests must show the same message"

    tasks = client.tasks.list(name=name)
    assert len(tasks) == 1
    task = tasks[0]
    assert task.media_type == "" and task.jobs["count"] == 0, "a failed creation rolls back (API.md §9.4)"
    assert task.get_jobs() == []
    truth = timeline(sim.url, task.id)
    assert truth["failed"] is True
    assert not truth["job_ids"]


# --- chunks (API.md §7.2) --------------------------------------------------------------------------------


def test_chunk_download(client, name, images):
    paths = images(4, size=(40, 30))
    task = create_task(client, name, paths, segment_size=4)
    (job,) = task.get_jobs()

    api = client.api_client.jobs_api
    _, resp = api.retrieve_data(job.id, type="chunk", index=0, quality="compressed", _parse_response=False)
    assert resp.status == 200
    with zipfile.ZipFile(io.BytesIO(resp.data)) as z:
        names = sorted(z.namelist())
        assert names == [f"{i:06d}.jpeg" for i in range(4)]
        for n in names:
            im = open_image(z.read(n))
            assert im.format == "JPEG"
            assert im.size == (40, 30)

    _, resp = api.retrieve_data(job.id, type="chunk", index=0, quality="original", _parse_response=False)
    assert resp.status == 200
    with zipfile.ZipFile(io.BytesIO(resp.data)) as z:
        members = sorted(z.namelist())
        assert len(members) == 4
        for member, src in zip(members, sorted(paths)):
            assert z.read(member) == src.read_bytes(), f"original chunk member {member} must be the source bytes"


def test_frame_download(client, name, images):
    paths = images(2, size=(20, 10))
    task = create_task(client, name, paths)
    (job,) = task.get_jobs()
    # Job.get_frame (cvat_sdk/core/proxies/jobs.py): GET /api/jobs/{id}/data?type=frame&number=N
    im = open_image(job.get_frame(1, quality="compressed").read())
    assert im.size == (20, 10)


# --- organizations (cvat_sdk/core/client.py: organization_slug, organization_context) -----------------


def test_organization_task(sim, client, name, images):
    """An organization as CVAT 2.73.0 answered it (measured): its owner's membership, a task created under
    X-Organization, get_jobs() with org_id and without the header (cvat_sdk/core/helpers.py), lists scoped
    by the context, an unknown slug refused, and a PAT working inside the organization."""
    from cvat_sdk import make_client, models
    from cvat_sdk.api_client import ApiClient, Configuration, exceptions

    slug = "conf" + str(int(time.time() * 1000) % 10**9)
    org = client.organizations.create(models.OrganizationWriteRequest(slug=slug, name="conformance org"))
    assert org.slug == slug and org.owner.username == USER
    members, _ = client.api_client.memberships_api.list(org=slug)
    assert [(m.user.username, m.role) for m in members.results] == [(USER, "owner")]

    with client.organization_context(slug):
        task = create_task(client, name, images(3), segment_size=2)
        assert task.organization == org.id
        jobs = task.get_jobs()
        assert len(jobs) == 2 and all(j.organization == org.id for j in jobs)
        found, _ = client.api_client.requests_api.list(action="create", target="task", task_id=task.id)
        assert found.count == 1 and found.results[0].operation.org_id == org.id
        assert [t.id for t in client.tasks.list()] == [task.id]

    client.organization_slug = ""  # the personal sandbox
    assert task.id not in [t.id for t in client.tasks.list()]
    client.organization_slug = "nosuch" + slug
    with pytest.raises(exceptions.NotFoundException):
        client.tasks.list()
    client.organization_slug = None

    basic = Configuration(host=sim.url, username=USER, password=PASSWORD)
    with ApiClient(basic) as api:
        token, _ = api.auth_api.create_access_tokens(
            models.AccessTokenWriteRequest(name="conformance-org", read_only=False, expiry_date=None)
        )
    with make_client(sim.url, access_token=token.value) as c:
        c.organization_slug = slug
        other = create_task(c, name + "-pat", images(1))
        assert other.organization == org.id
        assert sorted(t.id for t in c.tasks.list()) == sorted([task.id, other.id])
        other.remove()

    task.remove()
    client.organizations.retrieve(org.id).remove()
    with pytest.raises(exceptions.NotFoundException):
        client.organizations.retrieve(org.id)
