"""Fine-tuning jobs through the SDK on the random-weight tiny model: the mechanics (validation,
life cycle, events, checkpoints, results, serving the ft: model, isolation, cancel)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from openai.types.fine_tuning import FineTuningJob

from tests.conftest import FAST_MODEL
from tests.helpers import (
    SCALE_OUT,
    Server,
    alive,
    assert_stream_grammar,
    children,
    new_key,
    stored_blobs,
    wait_until,
)

DATA = Path(__file__).parent.parent / "data"


def jsonl(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def examples(n: int = 10) -> list[dict[str, object]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}."},
            ]
        }
        for i in range(n)
    ]


def upload(c: OpenAI, data: bytes, purpose: str = "fine-tune") -> str:
    return c.files.create(file=("train.jsonl", io.BytesIO(data)), purpose=purpose).id  # type: ignore[arg-type]


def wait(c: OpenAI, job_id: str, until: tuple[str, ...], timeout: float = 240) -> FineTuningJob:
    deadline = time.monotonic() + timeout
    while True:
        job = c.fine_tuning.jobs.retrieve(job_id)
        if job.status in until or time.monotonic() > deadline:
            return job
        time.sleep(0.3)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("ft"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def c(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "team-a"), max_retries=0)


@pytest.fixture(scope="module")
def other(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "team-b"), max_retries=0)


@pytest.fixture(scope="module")
def done_job(c: OpenAI) -> FineTuningJob:
    training = upload(c, jsonl(examples(10)))
    validation = upload(c, jsonl(examples(10)))
    job = c.fine_tuning.jobs.create(
        training_file=training,
        validation_file=validation,
        model=FAST_MODEL,
        suffix="tiny",
        seed=7,
        metadata={"team": "a"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    assert job.status == "validating_files"
    assert job.id.startswith("ftjob-")
    assert job.seed == 7
    return wait(c, job.id, ("succeeded", "failed", "cancelled"))


def test_job_runs_to_a_model(c: OpenAI, done_job: FineTuningJob) -> None:
    job = done_job
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:{FAST_MODEL}:team-a:tiny:{job.id[6:14]}"
    assert job.hyperparameters.n_epochs == 2
    assert job.hyperparameters.batch_size == 1  # auto, for 10 examples
    assert job.trained_tokens and job.trained_tokens > 0
    assert job.finished_at and job.finished_at >= job.created_at
    assert job.estimated_finish is None
    assert job.metadata == {"team": "a"}
    # The metrics file, as OpenAI attaches it.
    [result] = job.result_files
    assert c.files.retrieve(result).purpose == "fine-tune-results"
    csv = c.files.content(result).text.splitlines()
    assert csv[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert len(csv) == 1 + 20  # 10 examples, batch 1, 2 epochs


def test_events_tell_the_story_in_order(c: OpenAI, done_job: FineTuningJob) -> None:
    events = list(c.fine_tuning.jobs.list_events(done_job.id, limit=100))
    messages = [e.message for e in reversed(events)]  # the API lists newest first
    assert messages[0] == f"Created fine-tuning job: {done_job.id}"
    order = [
        "Validating training file",
        "Files validated",
        "Fine-tuning job started",
        "Step 1/20: training loss=",
        "Checkpoint created at step 10",
        "Step 20/20",
        "New fine-tuned model created",
        "The job has successfully completed",
    ]
    positions = [next(i for i, m in enumerate(messages) if m.startswith(o)) for o in order]
    assert positions == sorted(positions)
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == 20
    assert all("train_loss" in e.data for e in metrics)  # type: ignore[operator]
    # Validation loss at each epoch's end.
    assert sum("valid_loss" in e.data for e in metrics) == 2  # type: ignore[operator]
    page = c.fine_tuning.jobs.list_events(done_job.id, limit=3)
    assert len(page.data) == 3 and page.has_more


def test_checkpoints_answer_as_models(c: OpenAI, done_job: FineTuningJob) -> None:
    checkpoints = c.fine_tuning.jobs.checkpoints.list(done_job.id).data
    assert [k.step_number for k in checkpoints] == [20, 10]
    first = checkpoints[1]
    assert first.fine_tuned_model_checkpoint == f"{done_job.fine_tuned_model}:ckpt-step-10"
    assert first.metrics.train_loss is not None
    assert first.metrics.full_valid_loss is not None
    r = c.responses.create(
        model=first.fine_tuned_model_checkpoint, input="Question 1?", max_output_tokens=16
    )
    assert r.model == first.fine_tuned_model_checkpoint


def test_ft_model_answers_in_responses_and_chat(c: OpenAI, done_job: FineTuningJob) -> None:
    model = done_job.fine_tuned_model
    assert model is not None
    assert model in [m.id for m in c.models.list().data]
    assert c.models.retrieve(model).owned_by == "team-a"
    r = c.responses.create(model=model, input="Question 3?", max_output_tokens=16)
    assert r.status in ("completed", "incomplete")
    assert r.model == model
    events = list(
        c.responses.create(model=model, input="Question 3?", max_output_tokens=16, stream=True)
    )
    assert_stream_grammar(events)
    chat = c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Question 3?"}], max_tokens=16
    )
    assert chat.model == model
    # The adapter changes the base model's answer.
    base = c.responses.create(model=FAST_MODEL, input="Question 3?", max_output_tokens=16)
    assert base.output_text != r.output_text


def test_examples_and_adapters_live_in_the_blob_store(
    c: OpenAI, srv: Server, done_job: FineTuningJob, tmp_path: Path
) -> None:
    """On S3 a replica that never trained (an empty data dir) answers with the model: its
    adapter comes from the bucket."""
    job = done_job.id
    keys = stored_blobs(srv.env, "fine_tuning")
    assert f"{job}/examples.json" in keys
    assert any(k.startswith(f"{job}/") and k.endswith("adapter.gguf") for k in keys)
    if not SCALE_OUT:
        return
    shared = {
        k: srv.env[k] for k in srv.env if k.startswith(("KOTAE_DATABASE", "KOTAE_S3", "KOTAE_BLOB"))
    }
    fresh = Server(tmp_path / "elsewhere", worker=False, **shared)
    try:
        there = OpenAI(base_url=fresh.base_url, api_key=c.api_key, max_retries=0)
        model = done_job.fine_tuned_model
        assert model is not None
        r = there.responses.create(model=model, input="Question 3?", max_output_tokens=16)
        assert r.model == model and r.output_text
    finally:
        fresh.stop()


def test_another_project_sees_nothing(c: OpenAI, other: OpenAI, done_job: FineTuningJob) -> None:
    model = done_job.fine_tuned_model
    assert model is not None
    with pytest.raises(openai.NotFoundError):
        other.fine_tuning.jobs.retrieve(done_job.id)
    with pytest.raises(openai.NotFoundError) as err:
        other.responses.create(model=model, input="hi")
    assert err.value.code == "model_not_found"
    assert model not in [m.id for m in other.models.list().data]
    with pytest.raises(openai.NotFoundError):
        other.models.delete(model)
    assert [j.id for j in other.fine_tuning.jobs.list()] == []
    assert done_job.id in [j.id for j in c.fine_tuning.jobs.list()]
    assert [j.id for j in c.fine_tuning.jobs.list(metadata={"team": "b"})] == []


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (b'{"messages": []}\n' * 10, "Line 1 has no 'messages'"),
        (jsonl(examples(10))[:-1] + b"\n{not json\n", "Line 11 is not valid JSON"),
        (
            jsonl([{"messages": [{"role": "user", "content": "only a question"}]}] * 10),
            "Line 1 has no assistant message",
        ),
        (jsonl(examples(3)), "at least 10 are required"),
        (
            jsonl([*examples(9), {"messages": [{"role": "robot", "content": "x"}]}]),
            "Line 10, messages[0]: role",
        ),
    ],
)
def test_bad_training_files_fail_the_job_naming_the_line(c: OpenAI, rows: bytes, says: str) -> None:
    job = c.fine_tuning.jobs.create(training_file=upload(c, rows), model=FAST_MODEL)
    job = wait(c, job.id, ("failed", "succeeded"))
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.code == "invalid_training_file"
    assert job.error.param == "training_file"
    assert says in job.error.message
    assert job.fine_tuned_model is None


def test_bad_requests_are_400_and_create_nothing(c: OpenAI) -> None:
    good = upload(c, jsonl(examples(10)))
    before = len(c.fine_tuning.jobs.list(limit=100).data)
    cases = [
        ({"training_file": "file-missing", "model": FAST_MODEL}, "training_file"),
        (
            {"training_file": upload(c, jsonl(examples(10)), "assistants"), "model": FAST_MODEL},
            "training_file",
        ),
        ({"training_file": good, "model": "no-such-model"}, "model"),
        (
            {"training_file": good, "model": FAST_MODEL, "method": {"type": "reinforcement"}},
            "method.type",
        ),
        (
            {
                "training_file": good,
                "model": FAST_MODEL,
                "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 5}}},
            },
            "method.dpo.hyperparameters.beta",
        ),
        (
            {"training_file": good, "model": FAST_MODEL, "hyperparameters": {"n_epochs": 0}},
            "hyperparameters.n_epochs",
        ),
        ({"training_file": good, "model": FAST_MODEL, "suffix": "bad suffix!"}, "suffix"),
    ]
    for kwargs, param in cases:
        with pytest.raises(openai.BadRequestError) as err:
            c.fine_tuning.jobs.create(**kwargs)  # type: ignore[arg-type]
        assert err.value.body["param"] == param, kwargs  # type: ignore[index]
    assert len(c.fine_tuning.jobs.list(limit=100).data) == before
    with pytest.raises(openai.NotFoundError):
        c.fine_tuning.jobs.retrieve("ftjob-missing")


def test_cancel_stops_the_job_and_the_next_one_runs(c: OpenAI) -> None:
    long = c.fine_tuning.jobs.create(
        training_file=upload(c, jsonl(examples(10))),
        model=FAST_MODEL,
        hyperparameters={"n_epochs": 50},
    )
    wait(c, long.id, ("running",), timeout=60)
    cancelled = c.fine_tuning.jobs.cancel(long.id)
    assert cancelled.status == "cancelled"
    assert wait(c, long.id, ("succeeded", "failed"), timeout=3).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        c.fine_tuning.jobs.cancel(long.id)
    with pytest.raises(openai.BadRequestError):
        c.fine_tuning.jobs.pause(long.id)
    events = [e.message for e in c.fine_tuning.jobs.list_events(long.id, limit=100)]
    assert events[0] == "Fine-tuning job cancelled"
    short = c.fine_tuning.jobs.create(
        training_file=upload(c, jsonl(examples(10))),
        model=FAST_MODEL,
        hyperparameters={"n_epochs": 1},
    )
    assert wait(c, short.id, ("succeeded", "failed")).status == "succeeded"


def test_deleted_model_is_gone(c: OpenAI, srv: Server) -> None:
    job = c.fine_tuning.jobs.create(
        training_file=upload(c, jsonl(examples(10))),
        model=FAST_MODEL,
        hyperparameters={"n_epochs": 1},
    )
    job = wait(c, job.id, ("succeeded", "failed"))
    assert job.fine_tuned_model is not None
    c.responses.create(model=job.fine_tuned_model, input="x", max_output_tokens=16)
    deleted = c.models.delete(job.fine_tuned_model)
    assert deleted.deleted is True
    assert not [k for k in stored_blobs(srv.env, "fine_tuning") if k.startswith(f"{job.id}/")]
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model=job.fine_tuned_model, input="x")
    assert job.fine_tuned_model not in [m.id for m in c.models.list().data]
    with pytest.raises(openai.PermissionDeniedError):
        c.models.delete(FAST_MODEL)


def test_restart_during_training_fails_the_job_clearly(tmp_path: Path) -> None:
    srv = Server(tmp_path / "d", KOTAE_LEASE_SECONDS="2")
    client = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
    job = client.fine_tuning.jobs.create(
        training_file=upload(client, jsonl(examples(10))),
        model=FAST_MODEL,
        hyperparameters={"n_epochs": 50},
    )
    wait(client, job.id, ("running",), timeout=60)
    host = srv.background  # the server, or the worker beside an API replica
    try:
        wait_until(lambda: children(host.pid, "kotae.training.run"), 60, "training starts")
    except AssertionError:
        srv.stop()
        raise
    trainers = children(host.pid, "kotae.training.run")
    host.kill()  # no graceful shutdown: the row still says running
    host.wait()
    if host is srv.proc:
        srv._log.close()
    else:
        srv.stop()
    # The trainer goes with its process instead of training on for a job nobody runs.
    wait_until(lambda: not alive(trainers[0]), 10, "the trainer exits")
    again = Server(tmp_path / "d", KOTAE_LEASE_SECONDS="2")
    try:
        client = OpenAI(base_url=again.base_url, api_key=client.api_key, max_retries=0)
        # Failed once its lease lapses (the killed server no longer renews it), not merely
        # because a server started: another one may still be training it.
        after = wait(client, job.id, ("failed",), timeout=30)
        assert after.status == "failed"
        assert after.error is not None and after.error.code == "server_restarted"
    finally:
        again.stop()


def test_a_second_server_leaves_a_live_servers_training_alone(tmp_path: Path) -> None:
    """Two processes on one database (replicas): the one that starts later does not fail the
    job the other is training: its lease is being renewed."""
    first = Server(tmp_path / "d", KOTAE_LEASE_SECONDS="2")
    try:
        c = OpenAI(base_url=first.base_url, api_key=new_key(first.env, "p"), max_retries=0)
        job = c.fine_tuning.jobs.create(
            training_file=upload(c, jsonl(examples(10))),
            model=FAST_MODEL,
            hyperparameters={"n_epochs": 50},
        )
        assert wait(c, job.id, ("running",), timeout=60).status == "running"
        second = Server(tmp_path / "d", KOTAE_LEASE_SECONDS="2")
        try:
            c2 = OpenAI(base_url=second.base_url, api_key=c.api_key, max_retries=0)
            # Well past a lease: the second server's sweeps have run and found it renewed.
            seen = wait(c2, job.id, ("failed",), timeout=6)
            assert seen.status == "running", seen.error
        finally:
            second.stop()
        c.fine_tuning.jobs.cancel(job.id)
    finally:
        first.stop()


def test_files_are_checked_while_another_job_trains(c: OpenAI) -> None:
    long = c.fine_tuning.jobs.create(
        training_file=upload(c, jsonl(examples(10))),
        model=FAST_MODEL,
        hyperparameters={"n_epochs": 50},
    )
    assert wait(c, long.id, ("running",), timeout=60).status == "running"
    bad = c.fine_tuning.jobs.create(training_file=upload(c, jsonl(examples(3))), model=FAST_MODEL)
    good = c.fine_tuning.jobs.create(training_file=upload(c, jsonl(examples(10))), model=FAST_MODEL)
    assert wait(c, bad.id, ("failed",), timeout=30).status == "failed"
    queued = wait(c, good.id, ("queued",), timeout=30)
    assert queued.status == "queued"  # one job trains at a time; the next waits its turn
    assert queued.hyperparameters.n_epochs == 10  # "auto", resolved once the file was read
    assert c.fine_tuning.jobs.retrieve(long.id).status == "running"
    c.fine_tuning.jobs.cancel(long.id)
    assert wait(c, good.id, ("succeeded", "failed")).status == "succeeded"


def preferences(n: int = 10) -> list[dict[str, object]]:
    return [
        {
            "input": {"messages": [{"role": "user", "content": f"Greet me, number {i}."}]},
            "preferred_output": [{"role": "assistant", "content": "Hello there, friend!"}],
            "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
        }
        for i in range(n)
    ]


def test_dpo_job_learns_the_preferred_answer(c: OpenAI) -> None:
    job = c.fine_tuning.jobs.create(
        training_file=upload(c, jsonl(preferences())),
        model=FAST_MODEL,
        method={
            "type": "dpo",
            "dpo": {
                "hyperparameters": {"n_epochs": 3, "beta": 0.5, "learning_rate_multiplier": 10}
            },
        },
    )
    job = wait(c, job.id, ("succeeded", "failed"))
    assert job.status == "succeeded", job.error
    assert job.method is not None and job.method.type == "dpo"
    assert job.hyperparameters.n_epochs == 3
    steps = [
        e.data
        for e in reversed(list(c.fine_tuning.jobs.list_events(job.id, limit=100)))
        if e.type == "metrics"
    ]
    losses = [s["train_loss"] for s in steps]  # type: ignore[index]
    # The adapter starts as a no-op, so policy == reference and the loss is exactly log 2.
    assert abs(losses[0] - 0.6931) < 1e-3
    assert sum(losses[-10:]) / 10 < 0.5, losses
    assert steps[-1]["train_reward_accuracy"] == 1.0  # type: ignore[index]
    assert job.fine_tuned_model is not None
    c.responses.create(model=job.fine_tuned_model, input="Greet me.", max_output_tokens=16)


def test_bad_dpo_file_names_the_line(c: OpenAI) -> None:
    rows = [*preferences(9), {"input": {"messages": []}, "preferred_output": []}]
    job = c.fine_tuning.jobs.create(
        training_file=upload(c, jsonl(rows)), model=FAST_MODEL, method={"type": "dpo"}
    )
    job = wait(c, job.id, ("failed", "succeeded"))
    assert job.status == "failed" and job.error is not None
    assert job.error.message.startswith("Line 10 has no 'input.messages'")
