from __future__ import annotations

import time
from pathlib import Path

from kotae.storage.engine import make_engine, migrate, session_factory
from kotae.storage.repositories.projects import ProjectRepository
from kotae.storage.repositories.responses import ResponseRepository


def repos(tmp_path: Path) -> tuple[ProjectRepository, ResponseRepository]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    migrate(engine)  # idempotent on every start
    sessions = session_factory(engine)
    return ProjectRepository(sessions), ResponseRepository(engine)


def body(rid: str, prev: str | None = None) -> dict[str, object]:
    return {
        "id": rid,
        "previous_response_id": prev,
        "status": "completed",
        "created_at": int(time.time()),
        "output": [{"id": f"out-{rid}"}],
    }


def item(iid: str) -> dict[str, object]:
    return {"id": iid, "type": "message", "role": "user", "content": []}


def test_keys_are_hashed_and_revocable(tmp_path: Path) -> None:
    projects, _ = repos(tmp_path)
    key, info = projects.create_key("p1")
    assert projects.verify(key) == info.project_id
    assert projects.verify(key + "x") is None
    assert key not in str(projects.list_keys())
    projects.revoke(info.id)
    assert projects.verify(key) is None


def test_thread_walks_the_chain_within_a_project(tmp_path: Path) -> None:
    projects, responses = repos(tmp_path)
    p1 = projects.get_or_create_project("p1")
    p2 = projects.get_or_create_project("p2")
    responses.save(p1, body("r1"), [item("i1")], 3600)
    responses.save(p1, body("r2", "r1"), [item("i2a"), item("i2b")], 3600)
    responses.save(p1, body("r3", "r2"), [item("i3")], 3600)
    turns = responses.thread(p1, "r3")
    assert turns is not None
    assert [t.response_id for t in turns] == ["r1", "r2", "r3"]
    assert [i["id"] for i in turns[1].input_items] == ["i2a", "i2b"]
    assert turns[0].output_items == [{"id": "out-r1"}]
    assert responses.thread(p2, "r3") is None


def test_expired_responses_are_gone(tmp_path: Path) -> None:
    projects, responses = repos(tmp_path)
    p1 = projects.get_or_create_project("p1")
    responses.save(p1, body("old"), [item("i")], -1)
    responses.save(p1, body("new"), [item("j")], 3600)
    assert responses.get(p1, "old") is None
    assert responses.thread(p1, "old") is None
    assert responses.purge_expired() == 1
    assert responses.get(p1, "new") is not None


def test_only_lapsed_leases_fail_running_responses(tmp_path: Path) -> None:
    """A running response fails when its owner stopped renewing its lease, never because
    another process just started."""
    projects, responses = repos(tmp_path)
    p1 = projects.get_or_create_project("p1")
    for name, lease in (("live", 3600), ("dead", -1)):
        running = body(name)
        running["status"] = "in_progress"
        running["background"] = True
        responses.save(p1, running, [], 3600, owner=f"owner-{name}", lease_seconds=lease)
        responses.add_event(name, 0, "response.created", "{}")
    assert responses.fail_lapsed("stopped") == 1
    live, dead = responses.get(p1, "live"), responses.get(p1, "dead")
    assert live is not None and live["status"] == "in_progress"
    assert dead is not None and dead["status"] == "failed"
    assert dead["error"] == {"code": "server_error", "message": "stopped"}
    # The stream's end, numbered after what was stored.
    assert [(e.sequence_number, e.type) for e in responses.events("dead", -1)] == [
        (0, "response.created"),
        (1, "response.failed"),
    ]
    assert responses.renew("owner-live", 3600) == 1
    assert responses.fail_lapsed("stopped") == 0
