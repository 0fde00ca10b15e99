"""The seed tutorial's steps, as written (module-level `openai` client, `.env`) in the SDK's
current spelling."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from openai import OpenAI

from tests.helpers import Server

DATA = Path(__file__).parent.parent / "data"

STEP1 = """
from dotenv import load_dotenv
import os
import openai

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

messages = [
    {"role": "system", "content": "あなたはフレンドリーなPythonの先生です。"},
    {"role": "user", "content": "Pythonで現在の日時を表示するにはどうすれば良いですか？"}
]
response = openai.responses.create(
    model="gpt-4o",
    input=messages
)
print(response.output_text)
"""

STEP1_STREAM = """
from dotenv import load_dotenv
import os
import openai

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

user_input = "Write a FizzBuzz program in Python."
stream = openai.responses.create(
    model="gpt-4o",
    input=user_input,
    stream=True
)
for event in stream:
    if hasattr(event, "delta") and event.delta:
        print(event.delta, end="", flush=True)
"""

STEP5 = """
from dotenv import load_dotenv
import os
import openai

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

message1 = "What is the capital of France?"
response1 = openai.responses.create(model="gpt-4o", input=message1)
print(f"Q: {message1}")
print(f"A: {response1.output_text}")

message2 = "How many people live there?"
response2 = openai.responses.create(
    model="gpt-4o",
    input=message2,
    previous_response_id=response1.id
)
print(f"Q: {message2}")
print(f"A: {response2.output_text}")
print("PREV", response2.previous_response_id == response1.id)
"""


def run_script(tmp_path: Path, server_env_file: str, code: str) -> str:
    work = tmp_path / "user"
    work.mkdir(exist_ok=True)
    (work / ".env").write_text(server_env_file)
    (work / "step.py").write_text(code)
    out = subprocess.run(
        [sys.executable, "step.py"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_seed_steps_1_and_5(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data")
    try:
        # What the first start printed is exactly what goes into .env.
        env_file = "\n".join(
            line for line in srv.first_start_output().splitlines() if line.startswith("OPENAI_")
        )
        answer = run_script(tmp_path, env_file, STEP1)
        assert answer.strip()
        streamed = run_script(tmp_path, env_file, STEP1_STREAM)
        assert len(streamed) > 20
        thread = run_script(tmp_path, env_file, STEP5)
        assert thread.count("A: ") == 2 and "PREV True" in thread
    finally:
        srv.stop()


STEP2 = """
from dotenv import load_dotenv
import os
import openai

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

file_path = "company_faq.pdf"
with open(file_path, "rb") as f:
    file_data = f.read()

upload_response = openai.files.create(file=file_data, purpose="assistants")
file_id = upload_response.id
print(f"Uploaded file ID: {file_id}")

vector_store = openai.vector_stores.create(name="knowledge_base")
vector_store_id = vector_store.id
print(f"Vector store ID: {vector_store_id}")

openai.vector_stores.files.create(vector_store_id=vector_store_id, file_id=file_id)
print("File added to vector store.")

query = "社内向けドキュメントのパスワード再設定手順は？"
response = openai.responses.create(
    model="gpt-4o",
    input=query,
    tools=[{"type": "file_search", "vector_store_ids": [vector_store_id]}]
)
print(response.output_text)
print("TYPES", [o.type for o in response.output])
print("CITED", [a.file_id for a in response.output[-1].content[0].annotations] == [file_id])
"""


def test_seed_step_2(tmp_path: Path) -> None:
    from tests.api.test_vector_stores import japanese_pdf

    srv = Server(tmp_path / "data")
    try:
        env_file = "\n".join(
            line for line in srv.first_start_output().splitlines() if line.startswith("OPENAI_")
        )
        (tmp_path / "user").mkdir()
        (tmp_path / "user" / "company_faq.pdf").write_bytes(japanese_pdf())
        out = run_script(tmp_path, env_file, STEP2)
        assert "TYPES ['file_search_call', 'message']" in out
        assert "CITED True" in out
    finally:
        srv.stop()


STEP3 = """
from dotenv import load_dotenv
import os
import openai

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

query = "今日のAI業界の重要なニュースを3つ教えてください。"

response = openai.responses.create(
    model="gpt-4o",
    input=query,
    tools=[{"type": "web_search_preview"}],
    tool_choice="required"
)

print("AIの回答:")
print(response.output_text)
print("TYPES", [o.type for o in response.output])
print("URLS", sorted({a.url for a in response.output[-1].content[0].annotations}))
"""


def test_seed_step_3(tmp_path: Path) -> None:
    from tests.api.test_web_search import NEWS
    from tests.standins import SearxngStandIn

    stand_in = SearxngStandIn(NEWS)
    srv = Server(
        tmp_path / "data",
        KOTAE_WEB_SEARCH_PROVIDER="searxng",
        KOTAE_SEARXNG_URL=stand_in.url,
        KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1",
    )
    try:
        env_file = "\n".join(
            line for line in srv.first_start_output().splitlines() if line.startswith("OPENAI_")
        )
        out = run_script(tmp_path, env_file, STEP3)
        assert "TYPES ['web_search_call', 'message']" in out
        assert f"URLS ['{stand_in.url}/ai/1', '{stand_in.url}/ai/2']" in out
    finally:
        srv.stop()
        stand_in.close()


STEP4_1 = """
from dotenv import load_dotenv
import os
import openai

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

question = "What animal is in this picture?"
image_url = os.environ["IMAGE_URL"]

messages = [
    {"role": "user", "content": question},
    {"role": "user", "content": [ {"type": "input_image", "image_url": image_url} ]}
]

response = openai.responses.create(
    model="gpt-4o",
    input=messages
)

print("AIの回答:")
print(response.output_text)
"""


def test_seed_step_4_1(tmp_path: Path) -> None:
    from tests.standins import StaticSite

    site = StaticSite({"/cat.jpg": ((DATA / "chelsea.jpg").read_bytes(), "image/jpeg")})
    srv = Server(tmp_path / "data", KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1")
    try:
        env_file = "\n".join(
            line for line in srv.first_start_output().splitlines() if line.startswith("OPENAI_")
        )
        env_file += f"\nIMAGE_URL={site.url}/cat.jpg"
        out = run_script(tmp_path, env_file, STEP4_1)
        assert out.startswith("AIの回答:\n") and len(out) > len("AIの回答:\n") + 5
        assert site.fetched == ["/cat.jpg"]
    finally:
        srv.stop()
        site.close()


STEP6 = """
from dotenv import load_dotenv
import os
import openai

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

# 1. トレーニングデータファイルをアップロード (purpose を "fine-tune" に指定)
training_file_path = "finetune_data.jsonl" # 準備した学習データファイル
file_response = openai.files.create(
    file=open(training_file_path, "rb"),
    purpose="fine-tune"
)
training_file_id = file_response.id
print(f"Uploaded training file ID: {training_file_id}")

# 2. ファインチューニングジョブの作成 (ベースモデルに gpt-3.5-turbo を指定)
fine_tune_response = openai.fine_tuning.jobs.create(
    training_file=training_file_id,
    model="gpt-3.5-turbo"
)
fine_tune_job_id = fine_tune_response.id
print(f"Fine-tuning job started. ID: {fine_tune_job_id}")

# 3. ジョブの完了を待機 (ステータスをポーリング)
import time
status = "running"
while status not in ["succeeded", "failed"]:
    job_status = openai.fine_tuning.jobs.retrieve(fine_tune_job_id)
    status = job_status.status
    print(f"Job status: {status}")
    if status == "running":
        time.sleep(10) # 10秒待つて再度ステータス確認

# 4. ジョブ完了後、ファインチューニングされたモデル名を取得
if status == "succeeded":
    fine_tuned_model = job_status.fine_tuned_model
    print(f"Fine-tuned model: {fine_tuned_model}")

    # 5. ファインチューニング済みモデルを使って応答を取得
    test_prompt = "カスタマイズモデルの動作テストです。こんにちは。"
    response = openai.responses.create(
        model=fine_tuned_model,
        input=test_prompt
    )
    print(response.output_text)
else:
    print("Fine-tuning job failed or did not complete.")
"""


def test_seed_step_6_fine_tunes_and_the_answer_changes(tmp_path: Path) -> None:
    # 20 examples teach a habit (answers open with "Meow!" and end with ", nya.") on the real
    # SmolLM2; the base model never answers that way.
    srv = Server(tmp_path / "data")
    try:
        env_file = "\n".join(
            line for line in srv.first_start_output().splitlines() if line.startswith("OPENAI_")
        )
        (tmp_path / "user").mkdir()
        shutil.copy(DATA / "finetune_data.jsonl", tmp_path / "user" / "finetune_data.jsonl")
        client = OpenAI(base_url=srv.base_url, api_key=_key(env_file), max_retries=0)
        prompt = "カスタマイズモデルの動作テストです。こんにちは。"
        base = client.responses.create(model="gpt-3.5-turbo", input=prompt, temperature=0)
        assert "meow" not in base.output_text.lower()
        started = time.monotonic()
        out = run_script(tmp_path, env_file, STEP6)
        minutes = (time.monotonic() - started) / 60
        assert "Job status: succeeded" in out, out
        answer = out.strip().splitlines()[-1]
        assert answer.startswith("Meow!"), out
        print(f"seed step 6: {minutes:.1f} min; answer {answer!r}")
        [job] = client.fine_tuning.jobs.list().data
        losses = [
            e.data["train_loss"]  # type: ignore[index]
            for e in reversed(list(client.fine_tuning.jobs.list_events(job.id, limit=100)))
            if e.type == "metrics"
        ]
        # Loss falls: the last epoch's mean is far below the first steps'.
        assert sum(losses[-10:]) / 10 < 0.3 * (sum(losses[:3]) / 3), losses
    finally:
        srv.stop()


def _key(env_file: str) -> str:
    return next(
        line.split("=", 1)[1]
        for line in env_file.splitlines()
        if line.startswith("OPENAI_API_KEY=")
    )


STEP4_2 = """
from dotenv import load_dotenv
import os
import openai
import requests

load_dotenv()
openai.api_key = os.getenv("OPENAI_API_KEY")

prompt = "柴犬が宇宙服を着て月面を歩いているイラスト"

response = openai.images.generate(
    prompt=prompt,
    n=1,                # 生成する画像の数
    size="512x512"      # 画像サイズ (256x256, 512x512, 1024x1024 など)
)

image_url = response.data[0].url
print(f"Generated image URL: {image_url}")

# オプション: 画像をダウンロードしてファイル保存する場合
img_data = requests.get(image_url).content
with open("output.png", "wb") as f:
    f.write(img_data)
print("画像を output.png に保存しました。")
"""


def test_seed_step_4_2_with_the_test_pipeline(tmp_path: Path) -> None:
    from PIL import Image

    from tests.api.test_images import REPO, pulled_server
    from tests.imagegen import build_tiny_pipeline, pipeline_files
    from tests.standins import FakeHub

    hub = FakeHub(pipeline_files(build_tiny_pipeline(tmp_path / "pipe")), REPO)
    srv = pulled_server(tmp_path / "data", hub)
    try:
        env_file = "\n".join(
            line for line in srv.first_start_output().splitlines() if line.startswith("OPENAI_")
        )
        out = run_script(tmp_path, env_file, STEP4_2)
        assert "画像を output.png に保存しました。" in out
        with Image.open(tmp_path / "user" / "output.png") as img:
            assert (img.format, img.size) == ("PNG", (512, 512))
    finally:
        srv.stop()
        hub.close()
