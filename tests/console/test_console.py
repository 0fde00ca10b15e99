"""The web console in headless Chromium (Debian's, driven by Playwright) against a real server:
a user signs in, uploads a PDF, makes a store, asks with file search and watches the answer
stream and its citation appear; the log, models, fine-tuning and keys pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.api.test_fine_tuning import examples, jsonl
from tests.api.test_vector_stores import japanese_pdf
from tests.conftest import FAST_MODEL
from tests.helpers import Server, new_key

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)
QUESTION = "社内向けドキュメントのパスワード再設定手順は？"
# Chromium's own calls home fail (and slow it) on a closed network.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("console"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin_key(srv: Server) -> str:
    """The key the first start prints: the operator's, an admin key."""
    found = re.search(r"OPENAI_API_KEY=(\S+)", srv.first_start_output())
    assert found
    return found.group(1)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, srv: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    outside: list[str] = []
    # Every request the page makes must go to this server (assets included).
    pg.on("request", lambda r: None if r.url.startswith(origin(srv)) else outside.append(r.url))
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not outside, f"the console fetched from elsewhere: {outside}"
    assert not errors, f"script errors: {errors}"


def origin(srv: Server) -> str:
    return srv.base_url.removesuffix("/v1")


def sign_in(page: Any, srv: Server, key: str) -> None:
    page.goto(origin(srv) + "/")
    page.fill("#api-key", key)
    page.click("#sign-in-form button")
    page.wait_for_selector("#playground:not([hidden])")


def not_blank(png: Path, box: dict[str, float]) -> bool:
    """Something is drawn in `box` of the screenshot: more than a handful of colours."""
    with Image.open(png) as img:
        crop = img.convert("RGB").crop(
            (
                int(box["x"]),
                int(box["y"]),
                int(box["x"] + box["width"]),
                int(box["y"] + box["height"]),
            )
        )
        return len(set(crop.get_flattened_data())) > 8


def test_root_is_the_console_with_its_own_assets(srv: Server) -> None:
    r = httpx.get(origin(srv) + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for src in re.findall(r'(?:src|href)="(/[^"]+)"', r.text):
        assert httpx.get(origin(srv) + src).status_code == 200, src
    assert "http" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', r.text))


def test_a_wrong_key_is_refused(page: Any, srv: Server) -> None:
    page.goto(origin(srv) + "/")
    page.fill("#api-key", "sk-kotae-not-a-key")
    page.click("#sign-in-form button")
    page.wait_for_selector("#sign-in-error:has-text('refused')")
    assert "refused" in page.inner_text("#sign-in-error")
    assert page.is_hidden("#tabs")


def test_upload_store_and_ask_with_file_search(
    page: Any, srv: Server, admin_key: str, tmp_path: Path
) -> None:
    pdf = japanese_pdf()
    sign_in(page, srv, admin_key)
    page.click("#tabs button[data-tab=files]")
    page.set_input_files(
        "#upload-file",
        files=[{"name": "company_faq.pdf", "mimeType": "application/pdf", "buffer": pdf}],
    )
    page.click("#upload-form button")
    page.wait_for_selector("#files-table td:text('company_faq.pdf')")
    assert page.eval_on_selector("#upload-progress", "p => p.value") == 100
    page.check("#files-table tbody tr:has-text('company_faq.pdf') input[type=checkbox]")
    page.fill("#store-name", "knowledge_base")
    page.click("#store-form button")
    # Ingestion shows as it goes, then the file is done.
    page.wait_for_selector("#stores-table td:text('1 / 0 / 0')", timeout=120_000)
    page.wait_for_selector("#store-files-table td:text('completed')")
    page.fill("#search-query", "パスワード")
    page.click("#search-form button")
    page.wait_for_selector("#search-results li strong:text('company_faq.pdf')")
    page.screenshot(path=tmp_path / "files.png", full_page=True)

    page.click("#tabs button[data-tab=playground]")
    page.wait_for_selector("#pg-store option:text('knowledge_base')", state="attached")
    page.select_option("#pg-model", "gpt-4o")
    page.fill("#pg-input", QUESTION)
    page.check("#tool-file-search")
    page.fill("#pg-max-tokens", "200")
    # Each change to the answer while it streams, as the user sees it.
    page.evaluate(
        """() => { window.seen = [];
        new MutationObserver(() => window.seen.push(
            [document.querySelector('#answer').textContent.length,
             document.querySelector('#pg-status').textContent]))
        .observe(document.querySelector('#answer'), {childList: true, characterData: true,
                                                      subtree: true}); }"""
    )
    page.click("#pg-send")
    page.wait_for_selector(
        ", ".join(f"#pg-status[data-status={s}]" for s in ("completed", "incomplete", "error")),
        timeout=300_000,
    )
    assert page.inner_text("#pg-error") == ""
    page.wait_for_selector("#citations li:text('company_faq.pdf')")
    seen = page.evaluate("window.seen")
    lengths = [n for n, status in seen if status == "in_progress"]
    assert len(set(lengths)) > 3, f"the answer did not stream: {seen[:10]}"
    assert lengths == sorted(lengths)
    events = page.eval_on_selector_all("#timeline li", "rows => rows.map(r => r.dataset.type)")
    assert events[0] == "response.created"
    assert events[-1] in ("response.completed", "response.incomplete")
    assert "response.file_search_call.completed" in events
    deltas = page.eval_on_selector(
        "#timeline li[data-type='response.output_text.delta']", "r => Number(r.dataset.count)"
    )
    assert deltas > 3
    assert "response.output_text.annotation.added" in events
    usage = page.inner_text("#pg-usage")
    assert re.search(r"resp_\w+ · \d+ tokens in, \d+ out", usage)

    shot = tmp_path / "playground.png"
    page.screenshot(path=shot, full_page=True)
    with Image.open(shot) as img:
        assert img.width == 1280
    for selector in ("#answer", "#citations", "#timeline"):
        box = page.locator(selector).bounding_box()
        assert box and box["height"] > 0 and not_blank(shot, box), selector

    # The log lists it; its items and usage open from there.
    response_id = usage.split(" ")[0]
    page.click("#tabs button[data-tab=responses]")
    page.click(f"#responses-table a:text('{response_id}')")
    status = page.get_attribute("#pg-status", "data-status")
    page.wait_for_selector(f"#response-detail-id:text('{response_id} ({status})')")
    assert QUESTION in page.inner_text("#response-input-items")
    outputs = page.inner_text("#response-output-items")
    assert "file_search_call" in outputs and "assistant:" in outputs


def test_models_page_lists_aliases(page: Any, srv: Server, admin_key: str) -> None:
    sign_in(page, srv, admin_key)
    page.click("#tabs button[data-tab=models]")
    row = page.locator("#models-table tr:has(td:text-is('gpt-4o'))")
    row.wait_for()
    assert "alias of smollm2-135m-instruct" in row.inner_text()


def test_fine_tuning_job_shows_loss_and_checkpoints(
    page: Any, srv: Server, admin_key: str, tmp_path: Path
) -> None:
    training = jsonl(examples(10))
    sign_in(page, srv, admin_key)
    page.click("#tabs button[data-tab=files]")
    page.select_option("#upload-purpose", "fine-tune")
    page.set_input_files(
        "#upload-file",
        files=[{"name": "train.jsonl", "mimeType": "application/jsonl", "buffer": training}],
    )
    page.click("#upload-form button")
    page.wait_for_selector("#files-table td:text('train.jsonl')")
    page.click("#tabs button[data-tab=fine-tuning]")
    page.wait_for_selector("#ft-file option:has-text('train.jsonl')", state="attached")
    page.select_option("#ft-model", FAST_MODEL)
    page.fill("#ft-suffix", "console")
    page.fill("#ft-epochs", "2")
    page.click("#ft-form button")
    page.wait_for_selector("#job-detail-status[data-status=succeeded]", timeout=300_000)
    assert f"ft:{FAST_MODEL}:default:console" in page.inner_text("#job-detail-status")
    points = page.eval_on_selector("#loss-chart", "s => Number(s.dataset.points)")
    assert points >= 2
    assert page.locator("#loss-chart polyline").count() == 1
    assert page.locator("#checkpoints-table tbody tr").count() >= 1
    assert "The job has successfully completed" in page.inner_text("#job-events")
    shot = tmp_path / "fine-tuning.png"
    page.screenshot(path=shot, full_page=True)
    box = page.locator("#loss-chart").bounding_box()
    assert box and not_blank(shot, box)


def test_keys_page_for_an_admin_only(page: Any, srv: Server, admin_key: str) -> None:
    plain = new_key(srv.env, "team-z")
    sign_in(page, srv, plain)
    page.click("#tabs button[data-tab=keys]")
    page.wait_for_selector("#keys-note:has-text('not an admin key')")
    assert page.is_hidden("#key-form")
    page.click("#sign-out")

    sign_in(page, srv, admin_key)
    page.click("#tabs button[data-tab=keys]")
    page.wait_for_selector("#keys-table td:text('team-z')")
    page.select_option("#key-project", label="team-z")
    page.fill("#key-name", "from-console")
    page.click("#key-form button")
    page.wait_for_selector("#key-created:has-text('sk-kotae-')")
    made = re.search(r"sk-kotae-\S+", page.inner_text("#key-created"))
    assert made
    models = httpx.get(srv.base_url + "/models", headers={"Authorization": f"Bearer {made[0]}"})
    assert models.status_code == 200
    row = page.locator("#keys-table tr:has(td:text-is('from-console'))")
    page.once("dialog", lambda d: d.accept())
    row.locator("button").click()
    row.wait_for(state="detached")
    models = httpx.get(srv.base_url + "/models", headers={"Authorization": f"Bearer {made[0]}"})
    assert models.status_code == 401


def test_webhooks_page_adds_an_endpoint_and_shows_its_deliveries(page: Any, srv: Server) -> None:
    from openai import OpenAI

    key = new_key(srv.env, "team-hooks")
    sign_in(page, srv, key)
    page.click("#tabs button[data-tab=webhooks]")
    page.fill("#hook-url", "http://10.0.0.1:9/hook")
    page.fill("#hook-events", "response.incomplete, response.completed")
    page.click("#hook-form button")
    page.wait_for_selector("#hook-created:has-text('whsec_')")
    page.wait_for_selector("#hooks-table td:text('10.0.0.1')")
    client = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
    r = client.responses.create(model=FAST_MODEL, input="hi", background=True, max_output_tokens=16)
    row = page.locator(f"#deliveries-table tr:has(td:text-is('{r.id}'))")
    for _ in range(60):
        page.click("#tabs button[data-tab=webhooks]")
        if row.count() and "private or reserved" in row.inner_text():
            break
        page.wait_for_timeout(500)
    assert "pending" in row.inner_text() and "private or reserved" in row.inner_text()
    page.once("dialog", lambda d: d.accept())
    page.locator("#hooks-table tr button").first.click()
    page.wait_for_selector("#hooks-table tbody tr", state="detached")


def test_prompts_page_saves_versions_that_responses_render(page: Any, srv: Server) -> None:
    from openai import OpenAI

    key = new_key(srv.env, "team-prompts")
    sign_in(page, srv, key)
    page.click("#tabs button[data-tab=prompts]")
    page.fill("#prompt-name", "<img src=x onerror=alert(1)>")
    page.fill("#prompt-instructions", "Answer in one word about {{topic}}.")
    page.fill("#prompt-variables", '{"topic": "cats"}')
    page.click("#prompt-form button")
    page.wait_for_selector("#prompts-table td:text-is('1')")
    prompt_id = page.input_value("#prompt-id")
    assert prompt_id.startswith("pmpt_")
    # The name is shown as text, never as markup.
    assert page.locator("#prompts-table img").count() == 0
    page.fill("#prompt-instructions", "Answer in two words about {{topic}}.")
    page.click("#prompt-form button")
    page.wait_for_selector("#prompts-table td:text-is('2')")
    client = OpenAI(base_url=srv.base_url, api_key=key, max_retries=0)
    r = client.responses.create(
        model=FAST_MODEL, prompt={"id": prompt_id, "variables": {"topic": "dogs"}}, input="Go."
    )
    assert r.instructions == "Answer in two words about dogs."
    page.once("dialog", lambda d: d.accept())
    page.locator("#prompts-table tr button:text('Delete')").first.click()
    page.wait_for_selector("#prompts-table tbody tr", state="detached")
    assert client.models.list()  # the project's key still works; the prompt is gone:
    with pytest.raises(Exception, match="pmpt_"):
        client.responses.create(model=FAST_MODEL, prompt={"id": prompt_id}, input="Go.")
