"""/v1/images through the SDK on a tiny random-weight diffusers pipeline, pulled from a local
stand-in of the Hugging Face Hub as a user pulls a real one."""

from __future__ import annotations

import base64
import io
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy
from openai import OpenAI
from PIL import Image

from tests.conftest import FAST_MODEL
from tests.helpers import (
    SCALE_OUT,
    Server,
    assert_stream_grammar,
    kotae_env,
    new_key,
    run_cli,
    state_engine,
    stored_blobs,
)
from tests.imagegen import build_tiny_pipeline, pipeline_files
from tests.standins import FakeHub

REPO = "someone/tiny-sd"
TTL = 4


@pytest.fixture(scope="session")
def tiny_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    root = build_tiny_pipeline(tmp_path_factory.mktemp("pipeline") / "tiny-sd")
    hub = FakeHub(pipeline_files(root), REPO)
    yield hub
    hub.close()


def pulled_server(data_dir: Path, hub: FakeHub, **env: str) -> Server:
    pull_env = kotae_env(data_dir, KOTAE_HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0")
    out = run_cli(pull_env, "models", "pull", REPO)
    assert f"KOTAE_IMAGE_MODEL={REPO}" in out
    return Server(data_dir, KOTAE_IMAGE_MODEL=REPO, KOTAE_IMAGE_STEPS="4", **env)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, tiny_hub: FakeHub) -> Iterator[Server]:
    server = pulled_server(
        tmp_path_factory.mktemp("img"), tiny_hub, KOTAE_IMAGE_URL_TTL_SECONDS=str(TTL)
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def c(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0, timeout=300)


def png(size: tuple[int, int], colour: tuple[int, ...] = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA" if len(colour) == 4 else "RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def test_url_response_downloads_without_a_key_then_expires(
    c: OpenAI, srv: Server, tmp_path: Path
) -> None:
    # Another replica (no image model; its own data dir when the store is S3) opens the
    # links this one makes: the pictures are in the blob store's images area.
    shared = {k: v for k, v in srv.env.items() if k.startswith(("KOTAE_DATABASE", "KOTAE_S3"))}
    shared.update({k: v for k, v in srv.env.items() if k.startswith("KOTAE_BLOB")})
    other = Server(
        tmp_path / "b" if SCALE_OUT else srv.data_dir, log_name="b.log", worker=False, **shared
    )
    try:
        r = c.images.generate(
            prompt="柴犬が宇宙服を着て月面を歩いているイラスト", n=1, size="512x512"
        )
        url = r.data[0].url
        assert url is not None and r.data[0].b64_json is None
        got = httpx.get(url)  # no Authorization header
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(got.content))
        assert (img.format, img.size) == ("PNG", (512, 512))
        assert httpx.get(url.replace("signature=", "signature=0")).status_code == 404
        name = url.split("/images/files/", 1)[1].split("?", 1)[0]
        assert any(key.endswith(name) for key in stored_blobs(srv.env, "images"))
        there = httpx.get(url.replace(f":{srv.port}/", f":{other.port}/"))
        assert there.status_code == 200 and there.content == got.content
    finally:
        other.stop()
    time.sleep(TTL + 1)
    assert httpx.get(url).status_code == 404


def test_b64_json_sizes_formats_and_n(c: OpenAI) -> None:
    r = c.images.generate(
        model="gpt-image-1", prompt="a red fox", n=2, size="256x256", output_format="jpeg"
    )
    assert len(r.data) == 2
    assert r.output_format == "jpeg" and r.size == "256x256"
    for item in r.data:
        assert item.b64_json is not None and item.url is None
        img = Image.open(io.BytesIO(base64.b64decode(item.b64_json)))
        assert (img.format, img.size) == ("JPEG", (256, 256))
    webp = c.images.generate(
        model="dall-e-3",
        prompt="x",
        size="256x256",
        response_format="b64_json",
        output_format="webp",
    )
    assert Image.open(io.BytesIO(base64.b64decode(webp.data[0].b64_json or ""))).format == "WEBP"


def test_edit_with_mask_and_variation(c: OpenAI) -> None:
    mask = Image.new("RGBA", (256, 256), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (64, 64, 192, 192))  # transparent: may change
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    r = c.images.edit(
        image=("in.png", png((256, 256)), "image/png"),
        mask=("mask.png", buf.getvalue(), "image/png"),
        prompt="a window",
        response_format="b64_json",
    )
    edited = Image.open(io.BytesIO(base64.b64decode(r.data[0].b64_json or ""))).convert("RGB")
    assert edited.size == (256, 256)
    # Outside the mask the picture is kept; inside it was repainted.
    assert edited.getpixel((5, 5)) != edited.getpixel((128, 128))
    v = c.images.create_variation(
        image=("in.png", png((256, 256)), "image/png"), n=2, response_format="b64_json"
    )
    assert len(v.data) == 2


def test_bad_requests_are_400(c: OpenAI) -> None:
    for kwargs, param in (
        ({"size": "100x100"}, "size"),
        ({"background": "transparent"}, "background"),
        ({"model": "gpt-4o"}, "model"),
        ({"quality": "ultra"}, "quality"),
    ):
        with pytest.raises(openai.BadRequestError) as err:
            c.images.generate(prompt="x", **kwargs)  # type: ignore[arg-type]
        assert err.value.body["param"] == param  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        c.images.edit(
            image=("in.png", png((256, 256)), "image/png"),
            mask=("m.png", png((128, 128), (0, 0, 0, 0)), "image/png"),
            prompt="x",
        )
    assert err.value.body["param"] == "mask"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        c.images.create_variation(image=("in.png", b"not a picture", "image/png"))
    assert err.value.body["param"] == "image"  # type: ignore[index]


def test_no_image_model_says_what_to_do(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(prompt="a cat", size="512x512")
    assert err.value.code == "image_model_not_configured"
    assert "kotae models pull" in err.value.message
    assert "KOTAE_IMAGE_MODEL" in err.value.message


def test_remote_openai_compatible_image_api(c: OpenAI, srv: Server, tmp_path: Path) -> None:
    # A second kotae with no model of its own uses the first one's Images API.
    front = Server(
        tmp_path / "front",
        KOTAE_IMAGE_BASE_URL=srv.base_url,
        KOTAE_IMAGE_API_KEY=c.api_key,
        KOTAE_IMAGE_REMOTE_MODEL="gpt-image-1",
        KOTAE_PUBLIC_URL="https://ai.example.com",
    )
    try:
        fc = OpenAI(base_url=front.base_url, api_key=new_key(front.env, "f"), max_retries=0)
        r = fc.images.generate(prompt="a boat", size="256x256", response_format="b64_json")
        img = Image.open(io.BytesIO(base64.b64decode(r.data[0].b64_json or "")))
        assert img.size == (256, 256)
        # Behind a proxy, links start with the public URL.
        url = fc.images.generate(prompt="a boat", size="256x256").data[0].url or ""
        assert url.startswith("https://ai.example.com/v1/images/files/")
        local = url.replace("https://ai.example.com/v1", front.base_url)
        assert httpx.get(local).status_code == 200
    finally:
        front.stop()


def test_image_generation_tool_in_responses(c: OpenAI) -> None:
    r = c.responses.create(
        model=FAST_MODEL,
        input="Draw a lighthouse at dusk.",
        tools=[{"type": "image_generation", "size": "256x256", "output_format": "webp"}],
        tool_choice={"type": "image_generation"},
        max_output_tokens=16,
    )
    call = r.output[0]
    assert call.type == "image_generation_call"
    assert call.status == "completed"
    assert call.revised_prompt == "Draw a lighthouse at dusk."
    img = Image.open(io.BytesIO(base64.b64decode(call.result or "")))
    assert (img.format, img.size) == ("WEBP", (256, 256))
    assert r.tools[0].type == "image_generation"
    # The thread remembers the picture was drawn.
    follow = c.responses.create(
        model=FAST_MODEL, input="Thanks!", previous_response_id=r.id, max_output_tokens=16
    )
    assert follow.status in ("completed", "incomplete")


def test_image_generation_tool_streams_partial_images(c: OpenAI) -> None:
    events = list(
        c.responses.create(
            model=FAST_MODEL,
            input="Draw a lighthouse.",
            tools=[
                {
                    "type": "image_generation",
                    "size": "256x256",
                    "quality": "high",  # 4 steps here: room for two previews before the end
                    "partial_images": 2,
                }
            ],
            tool_choice="required",
            max_output_tokens=16,
            stream=True,
        )
    )
    assert_stream_grammar(events)
    kinds = [e.type for e in events if "image_generation_call" in e.type]
    assert kinds == [
        "response.image_generation_call.in_progress",
        "response.image_generation_call.generating",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.completed",
    ]
    partial = next(e for e in events if e.type.endswith("partial_image"))
    assert Image.open(io.BytesIO(base64.b64decode(partial.partial_image_b64))).size == (256, 256)
    done = next(e for e in events if e.type == "response.output_item.done")
    assert done.item.type == "image_generation_call" and done.item.result


def test_image_generation_tool_without_a_model(client: OpenAI) -> None:
    """Offered: left off the menu, the answer comes. Forced: a 400 saying what to do."""
    r = client.responses.create(
        model=FAST_MODEL,
        input="Draw a cat.",
        tools=[{"type": "image_generation"}],
        max_output_tokens=16,
    )
    assert r.error is None and r.tools[0].type == "image_generation"
    assert not [o for o in r.output if o.type == "image_generation_call"]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model=FAST_MODEL,
            input="Draw a cat.",
            tools=[{"type": "image_generation"}],
            tool_choice={"type": "image_generation"},
        )
    assert err.value.body["param"] == "tools[0].type"  # type: ignore[index]
    assert err.value.code == "image_model_not_configured"
    assert "kotae models pull" in err.value.message


def test_image_tool_edits_the_threads_latest_picture(c: OpenAI) -> None:
    source = "data:image/png;base64," + base64.b64encode(png((320, 192))).decode()
    r = c.responses.create(
        model=FAST_MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Make this sunset purple."},
                    {"type": "input_image", "image_url": source},
                ],
            }
        ],
        tools=[{"type": "image_generation"}],
        tool_choice={"type": "image_generation"},
        max_output_tokens=16,
    )
    call = r.output[0]
    assert call.type == "image_generation_call" and call.action == "edit"
    assert call.revised_prompt == "Make this sunset purple."  # not the image's description
    edited = Image.open(io.BytesIO(base64.b64decode(call.result or "")))
    assert edited.size == (320, 192)  # the input picture's size, edited
    # Next turn: the tool edits the picture it drew before.
    again = c.responses.create(
        model=FAST_MODEL,
        input="Now add stars.",
        previous_response_id=r.id,
        tools=[{"type": "image_generation", "action": "edit"}],
        tool_choice={"type": "image_generation"},
        max_output_tokens=16,
    )
    assert again.output[0].action == "edit"  # type: ignore[union-attr]
    # Asked to generate, it draws anew at the size asked for.
    fresh = c.responses.create(
        model=FAST_MODEL,
        input="Draw a moon.",
        previous_response_id=r.id,
        tools=[{"type": "image_generation", "action": "generate", "size": "256x256"}],
        tool_choice={"type": "image_generation"},
        max_output_tokens=16,
    )
    assert fresh.output[0].action == "generate"  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as err:
        c.responses.create(
            model=FAST_MODEL,
            input="Edit it.",
            tools=[{"type": "image_generation", "action": "edit"}],
        )
    assert "needs an image" in err.value.message


def test_an_api_replica_hands_image_requests_to_workers(tiny_hub: FakeHub, tmp_path: Path) -> None:
    """`serve --no-worker` checks an image request itself (a bad one is a 400 with no worker
    running), then queues it and waits; a worker killed (-9) after taking it leaves it to
    another, which generates it again (safe to repeat), and the replica answers."""
    data = tmp_path / "q"
    pull_env = kotae_env(data, KOTAE_HF_ENDPOINT=tiny_hub.url, HF_HUB_OFFLINE="0")
    run_cli(pull_env, "models", "pull", REPO)
    env = {"KOTAE_IMAGE_MODEL": REPO, "KOTAE_IMAGE_STEPS": "4", "KOTAE_LEASE_SECONDS": "2"}
    srv = Server(data, args=["--no-worker"], worker=False, **env)
    workers: list[subprocess.Popen[bytes]] = []

    def worker(**extra: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kotae", "worker"],
            env={**srv.env, **extra},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        workers.append(proc)
        return proc

    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "p"), max_retries=0, timeout=300)
        with pytest.raises(openai.BadRequestError) as err:
            c.images.generate(prompt="x", size="7x7")
        assert err.value.body["param"] == "size"
        answers: list[Any] = []
        asking = threading.Thread(
            target=lambda: answers.append(
                c.images.generate(prompt="a red fox", size="256x256", response_format="b64_json")
            )
        )
        asking.start()
        time.sleep(3)
        assert asking.is_alive() and not answers  # waiting: no worker yet
        first = worker(KOTAE_TEST_FAULT="images.after_claim")
        assert first.wait(timeout=120) == -signal.SIGKILL
        worker()
        asking.join(timeout=240)
        [answer] = answers
        picture = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json)))
        assert picture.size == (256, 256)
        with state_engine(srv.env).connect() as conn:
            attempts = conn.execute(sqlalchemy.text("SELECT attempts FROM image_jobs")).scalar()
        assert attempts == 2
        edited = c.images.edit(
            image=("in.png", png((256, 256))), prompt="make it blue", response_format="b64_json"
        )
        assert Image.open(io.BytesIO(base64.b64decode(edited.data[0].b64_json))).size == (256, 256)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        srv.stop()
