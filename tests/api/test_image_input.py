"""input_image / input_file through the SDK: loaded by URL (through the fetch guard), data URL
and file id; described by the perception models for the text-only embedded model."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from PIL import Image, ImageDraw, ImageFont

from tests.conftest import FAST_MODEL, REAL_MODEL
from tests.helpers import Server, assert_stream_grammar, new_key
from tests.standins import StaticSite

DATA = Path(__file__).parent.parent / "data"
FONT = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"
MAX_IMAGE_BYTES = 300_000


def invoice_png() -> bytes:
    img = Image.new("RGB", (640, 200), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 40) if os.path.exists(FONT) else ImageFont.load_default(40)
    draw.text((20, 30), "Invoice total: 42.50 USD", fill="black", font=font)
    draw.text((20, 110), "Due date: March 3", fill="black", font=font)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def noise_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def site() -> Iterator[StaticSite]:
    cat = (DATA / "chelsea.jpg").read_bytes()
    s = StaticSite(
        {
            "/cat.jpg": (cat, "image/jpeg"),
            "/page.html": (b"<html>not an image</html>", "text/html"),
            "/big.png": (noise_png(600), "image/png"),
        }
    )
    yield s
    s.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("images"),
        KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1",
        KOTAE_MAX_IMAGE_BYTES=str(MAX_IMAGE_BYTES),
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def c(srv: Server) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "a"), max_retries=0, timeout=120)


def test_seed_step_4_1_image_by_url(c: OpenAI, site: StaticSite) -> None:
    # The seed's shape: the question and the image as two user messages.
    r = c.responses.create(
        model=REAL_MODEL,
        input=[
            {"role": "user", "content": "What animal is in this picture? Answer in one word."},
            {
                "role": "user",
                "content": [{"type": "input_image", "image_url": f"{site.url}/cat.jpg"}],
            },
        ],
        temperature=0,
        max_output_tokens=30,
    )
    assert "/cat.jpg" in site.fetched
    assert r.status == "completed"
    assert "cat" in r.output_text.lower(), r.output_text
    # The stored input keeps the image part as sent.
    items = c.responses.input_items.list(r.id, order="asc").data
    part = items[1].content[0]  # type: ignore[union-attr]
    assert part.type == "input_image"
    assert part.image_url == f"{site.url}/cat.jpg"  # type: ignore[union-attr]


def test_printed_text_is_read_back(c: OpenAI) -> None:
    r = c.responses.create(
        model=REAL_MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is the invoice total in this image?"},
                    {"type": "input_image", "image_url": data_url(invoice_png())},
                ],
            }
        ],
        temperature=0,
        max_output_tokens=40,
    )
    assert "42.50" in r.output_text, r.output_text


def test_image_by_file_id_and_isolation(c: OpenAI, srv: Server) -> None:
    f = c.files.create(file=("invoice.png", invoice_png(), "image/png"), purpose="vision")
    r = c.responses.create(
        model=REAL_MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is the due date shown in the image?"},
                    {"type": "input_image", "file_id": f.id, "detail": "low"},
                ],
            }
        ],
        temperature=0,
        max_output_tokens=40,
    )
    assert "march" in r.output_text.lower(), r.output_text
    other = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "b"), max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        other.responses.create(
            model=FAST_MODEL,
            input=[{"role": "user", "content": [{"type": "input_image", "file_id": f.id}]}],
        )
    assert err.value.body["param"] == "input[0].content[0].file_id"  # type: ignore[index]
    assert f.id in err.value.message


def test_private_address_is_refused_and_nothing_fetched(c: OpenAI) -> None:
    hidden = StaticSite(
        {"/cat.jpg": ((DATA / "chelsea.jpg").read_bytes(), "image/jpeg")}, host="127.0.0.2"
    )
    try:
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(
                model=FAST_MODEL,
                input=[
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": f"{hidden.url}/cat.jpg"}],
                    }
                ],
            )
        assert err.value.body["param"] == "input[0].content[0].image_url"  # type: ignore[index]
        assert hidden.fetched == []
    finally:
        hidden.close()
    assert c.responses.input_items  # the server is still up
    assert c.models.list().data


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/page.html", "invalid_image_format"),
        ("/big.png", "file_too_large"),
        ("/missing.png", "url_unreachable"),
    ],
)
def test_bad_images_are_400(c: OpenAI, site: StaticSite, path: str, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        c.responses.create(
            model=FAST_MODEL,
            input=[
                {"role": "user", "content": [{"type": "input_image", "image_url": site.url + path}]}
            ],
        )
    assert err.value.code == code
    assert err.value.body["param"] == "input[0].content[0].image_url"  # type: ignore[index]


def test_bad_data_url_and_missing_source_are_400(c: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        c.responses.create(
            model=FAST_MODEL,
            input=[
                {
                    "role": "user",
                    "content": [{"type": "input_image", "image_url": data_url(b"not a png")}],
                }
            ],
        )
    assert err.value.code == "invalid_image_format"
    with pytest.raises(openai.BadRequestError):
        c.responses.create(
            model=FAST_MODEL,
            input=[{"role": "user", "content": [{"type": "input_image", "detail": "auto"}]}],
        )


def test_pdf_input_file_is_read(c: OpenAI) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 10, "Project codename: BLUE HERON. Launch week: 42.")
    data = bytes(pdf.output())
    r = c.responses.create(
        model=REAL_MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_file",
                        "filename": "plan.pdf",
                        "file_data": "data:application/pdf;base64,"
                        + base64.b64encode(data).decode(),
                    },
                    {"type": "input_text", "text": "What is the project codename?"},
                ],
            }
        ],
        temperature=0,
        max_output_tokens=30,
    )
    assert "heron" in r.output_text.lower(), r.output_text


def test_streamed_with_an_image(c: OpenAI, site: StaticSite) -> None:
    events = list(
        c.responses.create(
            model=FAST_MODEL,
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Describe."},
                        {"type": "input_image", "image_url": f"{site.url}/cat.jpg"},
                    ],
                }
            ],
            max_output_tokens=16,
            stream=True,
        )
    )
    assert_stream_grammar(events)
    assert events[-1].type in ("response.completed", "response.incomplete")


def test_chat_completions_take_image_url_parts(c: OpenAI) -> None:
    r = c.chat.completions.create(
        model=REAL_MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is the invoice total in this image?"},
                    {"type": "image_url", "image_url": {"url": data_url(invoice_png())}},
                ],
            }
        ],
        temperature=0,
        max_tokens=40,
    )
    assert "42.50" in (r.choices[0].message.content or "")
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(
            model=FAST_MODEL,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": data_url(b"x")}}],
                }
            ],
        )
    assert err.value.body["param"] == "messages[0].content[0].image_url"  # type: ignore[index]
