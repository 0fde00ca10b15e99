"""/v1/vector_stores through the SDK on the real embedding model and real PDFs."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types import VectorStore

FONT = Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf")
FAQ_LINES = [
    "社内FAQ",
    "パスワードの再設定手順: 社内ポータルにログインし、「設定」→「セキュリティ」→"
    "「パスワード変更」を選びます。",
    "新しいパスワードは12文字以上にしてください。",
]


def japanese_pdf() -> bytes:
    from fpdf import FPDF

    if not FONT.exists():
        pytest.skip("fonts-ipafont-gothic is not installed (.ci/run installs it)")
    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("ipag", fname=str(FONT))
    pdf.set_font("ipag", size=12)
    for line in FAQ_LINES:
        pdf.multi_cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def create_and_poll(client: OpenAI, **kwargs: Any) -> VectorStore:
    """Create, then wait for ingestion (the SDK has this helper for files, not stores)."""
    vs = client.vector_stores.create(**kwargs)
    deadline = time.monotonic() + 120
    while vs.status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.1)
        vs = client.vector_stores.retrieve(vs.id)
    return vs


def docx_bytes(text: str) -> bytes:
    from docx import Document

    doc = Document()
    doc.add_paragraph(text)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def store(client: OpenAI) -> str:
    pdf = client.files.create(file=("company_faq.pdf", japanese_pdf()), purpose="assistants")
    txt = client.files.create(
        file=("travel.txt", b"Travel expenses must be filed within 30 days of the trip."),
        purpose="assistants",
    )
    doc = client.files.create(
        file=("onboarding.docx", docx_bytes("New employees receive a laptop on day one.")),
        purpose="assistants",
    )
    vs = create_and_poll(client, name="knowledge_base", file_ids=[pdf.id, txt.id])
    assert vs.status == "completed" and vs.file_counts.completed == 2
    client.vector_stores.files.create_and_poll(
        vector_store_id=vs.id, file_id=doc.id, attributes={"team": "hr", "year": 2025}
    )
    return vs.id


def test_japanese_pdf_answers_a_japanese_question(client: OpenAI, store: str) -> None:
    results = client.vector_stores.search(
        vector_store_id=store, query="パスワード再設定の手順は？"
    ).data
    assert results[0].filename == "company_faq.pdf"
    assert "パスワード変更" in results[0].content[0].text
    assert 0 < results[0].score <= 1


def test_english_question_finds_the_japanese_text(client: OpenAI, store: str) -> None:
    results = client.vector_stores.search(
        vector_store_id=store, query="How do I change my password?"
    ).data
    assert results[0].filename == "company_faq.pdf"


def test_english_text_and_docx(client: OpenAI, store: str) -> None:
    top = client.vector_stores.search(
        vector_store_id=store, query="deadline for travel expense claims"
    ).data[0]
    assert top.filename == "travel.txt"
    top = client.vector_stores.search(vector_store_id=store, query="laptop for new hires").data[0]
    assert top.filename == "onboarding.docx" and top.attributes == {"team": "hr", "year": 2025}


def test_filters_and_max_results(client: OpenAI, store: str) -> None:
    only_hr = client.vector_stores.search(
        vector_store_id=store,
        query="anything",
        filters={"type": "eq", "key": "team", "value": "hr"},
    ).data
    assert {r.filename for r in only_hr} == {"onboarding.docx"}
    compound = client.vector_stores.search(
        vector_store_id=store,
        query="anything",
        filters={
            "type": "and",
            "filters": [
                {"type": "gte", "key": "year", "value": 2024},
                {"type": "ne", "key": "team", "value": "it"},
            ],
        },
    ).data
    assert {r.filename for r in compound} == {"onboarding.docx"}
    assert (
        len(client.vector_stores.search(vector_store_id=store, query="x", max_num_results=1).data)
        == 1
    )
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.search(
            vector_store_id=store, query="x", filters={"type": "near", "key": "a", "value": 1}
        )


def test_file_listing_content_and_attributes(client: OpenAI, store: str) -> None:
    files = list(client.vector_stores.files.list(vector_store_id=store))
    assert len(files) == 3 and all(f.status == "completed" for f in files)
    assert list(client.vector_stores.files.list(vector_store_id=store, filter="failed")) == []
    doc = next(f for f in files if f.attributes)
    updated = client.vector_stores.files.update(
        vector_store_id=store, file_id=doc.id, attributes={"team": "people"}
    )
    assert updated.attributes == {"team": "people"}
    pages = client.vector_stores.files.content(vector_store_id=store, file_id=doc.id)
    assert "laptop" in "".join(p.text or "" for p in pages)
    client.vector_stores.files.update(
        vector_store_id=store, file_id=doc.id, attributes={"team": "hr", "year": 2025}
    )


def test_upload_and_poll_batches_and_broken_files(client: OpenAI) -> None:
    vs = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=vs.id,
        files=[
            ("a.md", b"# Alpha\nThe alpha project ships in May."),
            ("broken.pdf", b"%PDF-1.4 this is not really a pdf"),
            ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00"),
        ],
    )
    states = {
        f.id: (f.status, f.last_error)
        for f in client.vector_stores.files.list(vector_store_id=vs.id)
    }
    assert batch.file_counts.total == 3 and batch.file_counts.completed == 1, states
    failed = list(client.vector_stores.files.list(vector_store_id=vs.id, filter="failed"))
    assert len(failed) == 2
    codes = {f.last_error.code for f in failed if f.last_error}
    assert codes == {"invalid_file", "unsupported_file"}
    # The store stays usable.
    assert client.vector_stores.search(vector_store_id=vs.id, query="alpha").data
    f = client.vector_stores.files.upload_and_poll(
        vector_store_id=vs.id, file=("b.txt", b"Beta launches in June.")
    )
    assert f.status == "completed"
    assert client.vector_stores.retrieve(vs.id).file_counts.total == 4


def test_deleting_files_and_stores(client: OpenAI) -> None:
    f = client.files.create(file=("gone.txt", b"The zebra code is 4411."), purpose="assistants")
    vs = create_and_poll(client, name="tmp", file_ids=[f.id])
    assert client.vector_stores.search(vector_store_id=vs.id, query="zebra code").data
    client.files.delete(f.id)  # the file leaves every store
    assert client.vector_stores.search(vector_store_id=vs.id, query="zebra code").data == []
    assert list(client.vector_stores.files.list(vector_store_id=vs.id)) == []
    kept = client.files.create(file=("kept.txt", b"kept"), purpose="assistants")
    vs2 = create_and_poll(client, name="tmp2", file_ids=[kept.id])
    assert client.vector_stores.delete(vs2.id).deleted
    assert client.files.retrieve(kept.id).id == kept.id  # files survive their store
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs2.id)


def test_update_list_and_errors(client: OpenAI) -> None:
    vs = client.vector_stores.create(
        name="old", metadata={"a": "1"}, expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert vs.expires_at == vs.last_active_at + 7 * 86400  # type: ignore[operator]
    vs = client.vector_stores.update(vs.id, name="new", metadata={"b": "2"})
    assert vs.name == "new" and vs.metadata == {"b": "2"}
    assert vs.id in [s.id for s in client.vector_stores.list()]
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.create(file_ids=["file-missing"])
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=vs.id, file_id="file-missing")
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.create(
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 90},
            }
        )


def test_static_chunking_makes_small_chunks(client: OpenAI) -> None:
    text = " ".join(f"word{i}" for i in range(1000)).encode()
    f = client.files.create(file=("long.txt", text), purpose="assistants")
    vs = client.vector_stores.create(name="chunks")
    client.vector_stores.files.create_and_poll(
        vector_store_id=vs.id,
        file_id=f.id,
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20},
        },
    )
    pages = client.vector_stores.files.content(vector_store_id=vs.id, file_id=f.id)
    chunks = [p.text or "" for p in pages]
    assert len(chunks) == 13  # 1000 tokens, a new chunk every 80
    assert all(len(c.split()) <= 100 for c in chunks)


def test_other_project_sees_nothing(client: OpenAI, client_b: OpenAI, store: str) -> None:
    file_id = next(iter(client.vector_stores.files.list(vector_store_id=store))).id
    calls = [
        lambda: client_b.vector_stores.retrieve(store),
        lambda: client_b.vector_stores.search(vector_store_id=store, query="x"),
        lambda: client_b.vector_stores.files.list(vector_store_id=store),
        lambda: client_b.vector_stores.files.retrieve(vector_store_id=store, file_id=file_id),
        lambda: client_b.vector_stores.delete(store),
        lambda: client_b.vector_stores.create(file_ids=[file_id]),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call()
    assert store not in [s.id for s in client_b.vector_stores.list()]
    assert client.vector_stores.retrieve(store).file_counts.total == 3


# Twenty notes on the same few topics, each with one code word no other note has.
TOPICS = [
    "the quarterly budget review and the hiring plan for the support team",
    "moving the office to the new building and the parking rules there",
    "the incident with the payment service and how on-call handled it",
    "planning the customer workshop and the agenda for its second day",
]
KATAKANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモ"


def marker(i: int) -> str:
    return f"zq{i:02d}vex{'abcdefghij'[i % 10]}"


def katakana_marker(i: int) -> str:
    """Three katakana whose two bigrams no other note has (offsets 0, 10, 23 of 35)."""
    return "".join(KATAKANA[(i + step) % len(KATAKANA)] for step in (0, 10, 23))


def note(i: int) -> str:
    topic = TOPICS[i % len(TOPICS)]
    return (
        f"Meeting notes, week {i + 1}. We talked about {topic}. Everyone agreed to follow up "
        f"by email before Friday, and the minutes were shared with the wider group. Tracking "
        f"code for this meeting: {marker(i)}. 会議の管理番号は{katakana_marker(i)}です。"
    )


def test_an_exact_term_finds_its_file_first(client: OpenAI) -> None:
    """A word only one file contains puts that file first: the dense ranking (similar for
    all twenty notes) must not swamp the exact lexical hit. Before the score-aware fusion,
    4 of 20 English code words did."""
    ids = [
        client.files.create(file=(f"note-{i:02d}.txt", note(i).encode()), purpose="assistants").id
        for i in range(20)
    ]
    vs = create_and_poll(client, name="notes", file_ids=ids)
    assert vs.file_counts.completed == 20
    english = [
        client.vector_stores.search(vs.id, query=f"Which meeting had tracking code {marker(i)}?")
        .data[0]
        .file_id
        for i in range(20)
    ]
    assert sum(a == b for a, b in zip(english, ids, strict=True)) == 20
    japanese = [
        client.vector_stores.search(vs.id, query=f"管理番号{katakana_marker(i)}の会議は？")
        .data[0]
        .file_id
        for i in range(0, 20, 2)
    ]
    assert japanese == ids[::2]

    # Fixed weights: text only puts every code word's file first; dense only cannot.
    def first(query: str, dense: float, text: float) -> str:
        found = client.vector_stores.search(
            vs.id,
            query=query,
            ranking_options={"hybrid_search": {"embedding_weight": dense, "text_weight": text}},  # type: ignore[typeddict-unknown-key]
        )
        return found.data[0].file_id

    questions = [f"Which meeting had tracking code {marker(i)}?" for i in range(20)]
    assert [first(q, 0, 1) for q in questions] == ids
    assert sum(first(q, 1, 0) == ids[i] for i, q in enumerate(questions)) < 20
    with pytest.raises(openai.BadRequestError):
        first(questions[0], 0, 0)
    # A question with no such word still ranks by meaning.
    found = client.vector_stores.search(vs.id, query="Where will the office move to?").data
    assert found[0].filename in {f"note-{i:02d}.txt" for i in range(1, 20, 4)}
