"""The code_interpreter tool and /v1/containers through the SDK: a stand-in engine with
native tool calls (as vLLM or Ollama make them) writes the code, kotae's sandbox runs it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import sqlalchemy
from openai import OpenAI

from kotae.config import Settings
from kotae.container import sandbox
from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import SCALE_OUT, Server, assert_stream_grammar, new_key, state_engine
from tests.standins import ScriptedChatEngine

MODEL = "scripted"
AUTO = {"type": "code_interpreter", "container": {"type": "auto"}}
OUTPUTS = ["code_interpreter_call.outputs"]
SANDBOX = sandbox(Settings())

pytestmark = pytest.mark.skipif(
    SANDBOX is None or SANDBOX.missing() is not None, reason="no code interpreter sandbox here"
)


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OpenAI, OpenAI, ScriptedChatEngine, Server]]:
    engine = ScriptedChatEngine([])
    models = [{"id": MODEL, "backend": "openai_compat", "base_url": engine.url}]
    srv = Server(tmp_path_factory.mktemp("code"), KOTAE_MODELS=json.dumps(models))
    a = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "a"), max_retries=0, timeout=120)
    b = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "b"), max_retries=0, timeout=120)
    yield a, b, engine, srv
    srv.stop()
    engine.close()


@pytest.fixture
def code(
    setup: tuple[OpenAI, OpenAI, ScriptedChatEngine, Server],
) -> tuple[OpenAI, OpenAI, ScriptedChatEngine, Server]:
    setup[2].requests.clear()
    return setup


def python(source: str) -> list[tuple[str, dict[str, Any]]]:
    return [("python", {"code": source})]


def test_code_runs_and_its_output_comes_back(code: Any) -> None:
    client, _, engine, srv = code
    engine.steps = [python("import math\nprint(math.factorial(20))")]
    r = client.responses.create(
        model=MODEL, input="What is 20 factorial?", tools=[AUTO], include=OUTPUTS
    )
    assert [o.type for o in r.output] == ["code_interpreter_call", "message"]
    call = r.output[0]
    assert call.status == "completed" and call.container_id.startswith("cntr_")
    assert call.code == "import math\nprint(math.factorial(20))"
    assert call.outputs is not None and call.outputs[0].type == "logs"
    assert call.outputs[0].logs == "2432902008176640000\n"
    # The model's next turn read the output.
    assert "2432902008176640000" in engine.requests[1]["messages"][-1]["content"]
    assert "2432902008176640000" in r.output_text
    # Without the include, outputs are left out (as OpenAI does); the model still read them.
    engine.steps = [python("print(6 * 7)")]
    plain = client.responses.create(model=MODEL, input="6 times 7?", tools=[AUTO])
    assert plain.output[0].outputs is None and "42" in plain.output_text
    stored = client.responses.retrieve(r.id)
    assert stored.output[0].type == "code_interpreter_call"
    # On the scale-out stack the API replica (`serve --no-worker`) ran nothing itself: the
    # code went through the queue to the worker hosting the container.
    with state_engine(srv.env).connect() as conn:
        runs = conn.execute(
            sqlalchemy.text("SELECT status FROM container_runs WHERE container_id = :c"),
            {"c": call.container_id},
        ).all()
        host = conn.execute(
            sqlalchemy.text("SELECT host FROM containers WHERE id = :c"), {"c": call.container_id}
        ).scalar()
    assert [r.status for r in runs] == (["done"] if SCALE_OUT else [])
    assert (host is not None) == SCALE_OUT


def test_streamed_events_follow_the_spec(code: Any) -> None:
    client, _, engine, _ = code
    engine.steps = [python("x = 5\nx * 3")]
    events = assert_stream_grammar(
        client.responses.create(
            model=MODEL, input="Compute.", tools=[AUTO], include=OUTPUTS, stream=True
        )
    )
    kinds = [e.type for e in events if "code_interpreter" in e.type]
    assert kinds == [
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
    ]
    delta = next(e for e in events if e.type == "response.code_interpreter_call_code.delta")
    assert delta.delta == "x = 5\nx * 3" and delta.output_index == 0
    done = next(e for e in events if e.type == "response.output_item.done")
    assert done.item.type == "code_interpreter_call" and done.item.outputs[0].logs == "15\n"
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.status == "in_progress" and added.item.code == ""


def test_a_plot_is_an_image_a_container_file_and_a_citation(code: Any) -> None:
    client, _, engine, _ = code
    engine.steps = [
        python(
            "import matplotlib.pyplot as plt\n"
            "plt.plot([1, 4, 9, 16])\n"
            "plt.title('squares')\n"
            "plt.savefig('/mnt/data/squares.png')\n"
        ),
        "Here is the chart: sandbox:/mnt/data/squares.png",
    ]
    r = client.responses.create(model=MODEL, input="Plot squares.", tools=[AUTO], include=OUTPUTS)
    call = r.output[0]
    images = [o for o in call.outputs if o.type == "image"]
    assert len(images) == 1 and images[0].url.startswith("data:image/png;base64,")
    assert base64.b64decode(images[0].url.split(",", 1)[1]).startswith(b"\x89PNG")
    files = client.containers.files.list(call.container_id).data
    by_path = {f.path: f for f in files}
    assert {"/mnt/data/squares.png", "/mnt/data/figure-1.png"} <= set(by_path)
    saved = by_path["/mnt/data/squares.png"]
    assert saved.source == "assistant" and saved.id.startswith("cfile_")
    content = client.containers.files.content.retrieve(saved.id, container_id=call.container_id)
    assert content.read().startswith(b"\x89PNG")
    annotations = r.output[1].content[0].annotations
    cited = {a.file_id: a for a in annotations if a.type == "container_file_citation"}
    note = cited[saved.id]
    assert note.container_id == call.container_id and note.filename == "squares.png"
    assert r.output_text[note.start_index : note.end_index] == "/mnt/data/squares.png"


def test_state_and_files_carry_over_the_thread(code: Any) -> None:
    client, _, engine, _ = code
    engine.steps = [python("total = 40\nopen('/mnt/data/note.txt', 'w').write('kept')")]
    first = client.responses.create(model=MODEL, input="Remember 40.", tools=[AUTO])
    engine.steps = [python("print(total + 2, open('/mnt/data/note.txt').read())")]
    second = client.responses.create(
        model=MODEL,
        input="Add two.",
        tools=[AUTO],
        include=OUTPUTS,
        previous_response_id=first.id,
    )
    assert second.output[0].container_id == first.output[0].container_id
    assert second.output[0].outputs[0].logs == "42 kept\n"


def test_a_named_container_with_an_uploaded_csv(code: Any) -> None:
    client, _, engine, _ = code
    upload = client.files.create(
        file=("sales.csv", b"region,amount\nnorth,10\nsouth,32\n"), purpose="user_data"
    )
    container = client.containers.create(
        name="analysis",
        file_ids=[upload.id],
        expires_after={"anchor": "last_active_at", "minutes": 5},
    )
    assert container.status == "running" and container.expires_after.minutes == 5
    listed = client.containers.files.list(container.id).data
    assert [(f.path, f.source) for f in listed] == [("/mnt/data/sales.csv", "user")]
    engine.steps = [
        python("import pandas as pd\nprint(pd.read_csv('/mnt/data/sales.csv').amount.sum())")
    ]
    r = client.responses.create(
        model=MODEL,
        input="Total sales?",
        tools=[{"type": "code_interpreter", "container": container.id}],
        include=OUTPUTS,
    )
    assert r.output[0].container_id == container.id
    assert r.output[0].outputs[0].logs == "42\n"
    echoed = r.tools[0]
    assert echoed.type == "code_interpreter" and echoed.container == container.id


def test_hostile_code_through_the_tool_is_contained(code: Any) -> None:
    client, _, engine, srv = code
    engine.steps = [
        python(
            "import os\n"
            f"print(os.path.exists('{srv.data_dir}'), open('/proc/1/environ').read())\n"
            "os.kill(os.getpid(), 9)"
        )
    ]
    r = client.responses.create(model=MODEL, input="x", tools=[AUTO], include=OUTPUTS)
    call = r.output[0]
    assert call.status == "failed" and "process ended" in call.outputs[0].logs
    assert "KOTAE" not in call.outputs[0].logs
    engine.steps = [python("print('after')")]
    again = client.responses.create(
        model=MODEL,
        input="y",
        tools=[{"type": "code_interpreter", "container": call.container_id}],
        include=OUTPUTS,
    )
    assert again.output[0].outputs[0].logs == "after\n"


def test_containers_crud(code: Any) -> None:
    client, _, _, _ = code
    c = client.containers.create(name="crud", memory_limit="4g")
    assert c.id.startswith("cntr_") and c.memory_limit == "4g" and c.name == "crud"
    assert c.expires_after.anchor == "last_active_at" and c.expires_after.minutes == 20
    assert client.containers.retrieve(c.id).id == c.id
    assert c.id in [x.id for x in client.containers.list(name="crud")]
    f = client.containers.files.create(c.id, file=("hello.txt", b"hi there"))
    assert (f.path, f.bytes, f.source) == ("/mnt/data/hello.txt", 8, "user")
    assert client.containers.files.retrieve(f.id, container_id=c.id).id == f.id
    got = client.containers.files.content.retrieve(f.id, container_id=c.id).read()
    assert got == b"hi there"
    client.containers.files.delete(f.id, container_id=c.id)
    assert client.containers.files.list(c.id).data == []
    client.containers.delete(c.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(c.id)
    with pytest.raises(openai.BadRequestError) as bad:
        client.containers.create(name="x", memory_limit="3g")  # type: ignore[arg-type]
    assert bad.value.body["param"] == "memory_limit"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.containers.create(
            name="net", network_policy={"type": "allowlist", "allowed_domains": ["x.com"]}
        )


def test_containers_belong_to_their_project(code: Any) -> None:
    client, other, engine, _ = code
    c = client.containers.create(name="mine")
    f = client.containers.files.create(c.id, file=("secret.txt", b"a's"))
    for call in (
        lambda: other.containers.retrieve(c.id),
        lambda: other.containers.delete(c.id),
        lambda: other.containers.files.list(c.id),
        lambda: other.containers.files.retrieve(f.id, container_id=c.id),
        lambda: other.containers.files.content.retrieve(f.id, container_id=c.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert c.id not in [x.id for x in other.containers.list()]
    engine.steps = [python("print(1)")]
    with pytest.raises(openai.NotFoundError):
        other.responses.create(
            model=MODEL, input="x", tools=[{"type": "code_interpreter", "container": c.id}]
        )


def test_an_idle_container_expires(code: Any) -> None:
    client, _, engine, srv = code
    c = client.containers.create(
        name="old", expires_after={"anchor": "last_active_at", "minutes": 1}
    )
    client.containers.files.create(c.id, file=("x.txt", b"x"))
    with state_engine(srv.env).begin() as conn:
        conn.execute(
            sqlalchemy.text(
                "UPDATE containers SET last_active_at = last_active_at - 120 WHERE id = :i"
            ),
            {"i": c.id},
        )
    assert client.containers.retrieve(c.id).status == "expired"
    engine.steps = [python("print(1)")]
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(
            model=MODEL, input="x", tools=[{"type": "code_interpreter", "container": c.id}]
        )
    assert bad.value.code == "container_expired"
    with pytest.raises(openai.BadRequestError):
        client.containers.files.create(c.id, file=("y.txt", b"y"))


def test_the_small_model_writes_the_code_under_the_constrained_strategy(code: Any) -> None:
    client, _, _, _ = code
    r = client.responses.create(
        model=REAL_MODEL,
        input="Use Python to print the sum of 2 and 3.",
        tools=[AUTO],
        tool_choice={"type": "code_interpreter"},
        include=OUTPUTS,
        max_output_tokens=48,
    )
    call = r.output[0]
    assert call.type == "code_interpreter_call" and call.code
    assert call.status in ("completed", "failed") and call.outputs is not None


def test_the_agents_sdk_code_interpreter_tool(code: Any) -> None:
    from agents import Agent, CodeInterpreterTool, OpenAIResponsesModel, Runner

    client, _, engine, srv = code
    engine.steps = [python("print(sum(range(101)))")]
    agent = Agent(
        name="analyst",
        instructions="Use Python.",
        model=OpenAIResponsesModel(
            MODEL, openai.AsyncOpenAI(base_url=srv.base_url, api_key=client.api_key)
        ),
        tools=[
            CodeInterpreterTool(
                tool_config={"type": "code_interpreter", "container": {"type": "auto"}}
            )
        ],
    )
    result = Runner.run_sync(agent, "Sum 1..100.")
    assert "5050" in result.final_output
    kinds = [item.type for item in result.new_items]
    assert "tool_call_item" in kinds


def test_off_the_tool_is_left_out_and_containers_say_what_to_install(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = Server(tmp_path_factory.mktemp("nocode"), KOTAE_CODE_INTERPRETER_SANDBOX="off")
    try:
        client = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0)
        r = client.responses.create(
            model=FAST_MODEL, input="hi", tools=[AUTO], max_output_tokens=16
        )
        assert r.tools[0].type == "code_interpreter"
        assert all(o.type != "code_interpreter_call" for o in r.output)
        with pytest.raises(openai.BadRequestError) as forced:
            client.responses.create(
                model=FAST_MODEL, input="hi", tools=[AUTO], tool_choice={"type": "code_interpreter"}
            )
        assert forced.value.code == "code_interpreter_not_configured"
        with pytest.raises(openai.BadRequestError) as listing:
            client.containers.list()
        assert listing.value.code == "code_interpreter_not_configured"
    finally:
        srv.stop()
