"""/v1/organization/projects and their keys: an admin key's view (the console's Keys page)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import Server, new_key, run_cli


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("organization"))
    yield server
    server.stop()


def http(srv: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def admin(srv: Server) -> httpx.Client:
    found = re.search(r"OPENAI_API_KEY=(\S+)", srv.first_start_output())
    assert found, "the first start prints the operator's key"
    return http(srv, found.group(1))


def test_only_an_admin_key_manages_projects(srv: Server, admin: httpx.Client) -> None:
    plain = http(srv, new_key(srv.env, "team-a"))
    r = plain.get("/organization/projects")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "admin_key_required"
    # A bad key is a 401 before anything else.
    assert http(srv, "sk-kotae-nope").get("/organization/projects").status_code == 401
    # `kotae keys create --admin` makes another admin key.
    made = run_cli(srv.env, "keys", "create", "--project", "ops", "--admin").splitlines()
    assert "admin key" in made[0]
    assert http(srv, made[-1]).get("/organization/projects").status_code == 200
    listed = run_cli(srv.env, "keys", "list", "--project", "ops")
    assert "\tadmin\t" in listed


def test_projects_and_keys_round_trip(srv: Server, admin: httpx.Client) -> None:
    project = admin.post("/organization/projects", json={"name": "team-q"}).json()
    assert project["object"] == "organization.project" and project["id"].startswith("proj_")
    assert admin.post("/organization/projects", json={"name": "team-q"}).status_code == 409
    assert admin.post("/organization/projects", json={"name": ""}).status_code == 400
    names = [p["name"] for p in admin.get("/organization/projects?limit=100").json()["data"]]
    assert "default" in names and "team-q" in names
    assert admin.get(f"/organization/projects/{project['id']}").json()["name"] == "team-q"

    key = admin.post(f"/organization/projects/{project['id']}/api_keys", json={"name": "ci"}).json()
    assert key["object"] == "organization.project.api_key" and key["value"].startswith("sk-kotae-")
    assert key["redacted_value"].endswith(key["value"][-4:]) and key["admin"] is False
    page = admin.get(f"/organization/projects/{project['id']}/api_keys").json()
    assert [k["id"] for k in page["data"]] == [key["id"]] and "value" not in page["data"][0]
    assert page["data"][0]["last_used_at"] is None
    # The new key works, and in its own project.
    user = http(srv, key["value"])
    before = int(time.time())
    assert user.get("/models").status_code == 200
    used = admin.get(f"/organization/projects/{project['id']}/api_keys").json()["data"][0]
    assert before <= used["last_used_at"] <= int(time.time())

    # Another project's key id is not found there.
    other = admin.get("/organization/projects").json()["data"][0]["id"]
    assert admin.delete(f"/organization/projects/{other}/api_keys/{key['id']}").status_code == 404
    gone = admin.delete(f"/organization/projects/{project['id']}/api_keys/{key['id']}")
    assert gone.json() == {
        "object": "organization.project.api_key.deleted",
        "id": key["id"],
        "deleted": True,
    }
    # Refused at once, and no longer listed; deleting again is a 404.
    assert user.get("/models").status_code == 401
    assert admin.get(f"/organization/projects/{project['id']}/api_keys").json()["data"] == []
    assert (
        admin.delete(f"/organization/projects/{project['id']}/api_keys/{key['id']}").status_code
        == 404
    )
    assert admin.get("/organization/projects/proj_nope").status_code == 404
