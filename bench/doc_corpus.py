"""A retrieval test set built from documentation Debian installs (nothing written by hand):

- English: the Python library reference (`python3-doc`), one document per module page.
- Japanese: the Japanese manual pages (`manpages-ja`, section 1) that also have an English page.

Two kinds of query, each with one relevant document:
- exact: a word found in that document and in no other (an identifier in English, a
  katakana/kanji word in Japanese), asked inside a short question;
- paraphrase: what the document is about, in words the indexed text does not contain. English:
  the page title's description (the title line itself is not indexed). Japanese: the English
  man page's one-line NAME description, asked of the Japanese pages (cross-lingual).
"""

from __future__ import annotations

import gzip
import html
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

PYTHON_DOCS = Path("/usr/share/doc/python3-doc/html/library")
MAN_JA = Path("/usr/share/man/ja/man1")
MAN_EN = Path("/usr/share/man/man1")
PACKAGES = "python3-doc manpages-ja"

_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_IDENT = re.compile(r"\b[A-Za-z][A-Za-z0-9_]{7,}\b")
_JA_WORD = re.compile(r"[\u30a0-\u30ff\u4e00-\u9fff]{4,}")


@dataclass
class Doc:
    name: str
    text: str


@dataclass
class Query:
    text: str
    doc: str  # the relevant document's name
    kind: str  # "exact" | "paraphrase"
    language: str  # "en" | "ja"


def available() -> bool:
    return PYTHON_DOCS.is_dir() and MAN_JA.is_dir()


def python_docs(limit: int) -> tuple[list[Doc], list[Query]]:
    from kotae.services.vector_stores.extract import extract_text

    docs, queries = [], []
    for page in sorted(PYTHON_DOCS.glob("*.html")):
        raw = page.read_text(errors="replace")
        title = _TITLE.search(raw)
        if not title:
            continue
        parts = [p.strip() for p in html.unescape(title.group(1)).split("—")]
        if len(parts) < 3 or len(parts[1].split()) < 3:
            continue
        description = parts[1]
        text = extract_text(page.name, raw.encode())
        # The paraphrase query must not be a copy of a line in the document.
        text = "\n".join(line for line in text.splitlines() if description not in line)
        if len(text) < 2000:
            continue
        docs.append(Doc(page.stem, text))
        queries.append(
            Query(f"Which module covers {description.lower()}?", page.stem, "paraphrase", "en")
        )
        if len(docs) == limit:
            break
    return docs, queries


def _man(path: Path) -> str:
    with gzip.open(path, "rb") as f:
        source = f.read()
    out = subprocess.run(
        ["groff", "-k", "-Tutf8", "-man", "-P-cbou"],
        input=source,
        capture_output=True,
        timeout=30,
    )
    return out.stdout.decode("utf-8", "replace")


def _name_line(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if line in ("NAME", "名前", "名称") and i + 1 < len(lines):
            return lines[i + 1]
    return None


def man_pages(limit: int) -> tuple[list[Doc], list[Query]]:
    docs, queries = [], []
    for page in sorted(MAN_JA.glob("*.1.gz")):
        english = MAN_EN / page.name
        if not english.exists():
            continue
        ja = _man(page)
        name_en = _name_line(_man(english)) or ""
        name_ja = _name_line(ja)
        if " - " not in name_en or not name_ja or len(ja) < 1500:
            continue
        description = name_en.split(" - ", 1)[1].strip()
        if len(description.split()) < 3:
            continue
        command = page.name.removesuffix(".1.gz")
        docs.append(Doc(command, ja))
        queries.append(
            Query(f"Which command can {description.rstrip('.')}?", command, "paraphrase", "ja")
        )
        if len(docs) == limit:
            break
    return docs, queries


def exact_queries(docs: list[Doc], language: str) -> list[Query]:
    """A word of each document that no other document contains, asked in a question."""
    lowered = [d.text.lower() for d in docs]
    out = []
    for i, doc in enumerate(docs):
        pattern = _IDENT if language == "en" else _JA_WORD
        words = list(dict.fromkeys(pattern.findall(doc.text)))
        # From the middle of the document: not the title, not the boilerplate at the end.
        words = words[len(words) // 3 :] + words[: len(words) // 3]
        for word in words:
            w = word.lower()
            if "_" in w and language == "en" and w.count("_") > 2:
                continue
            if not any(w in other for j, other in enumerate(lowered) if j != i):
                question = (
                    f"What is {word} used for?" if language == "en" else f"「{word}」とは何ですか？"
                )
                out.append(Query(question, doc.name, "exact", language))
                break
    return out


def build(per_language: int) -> tuple[list[Doc], list[Query]]:
    en_docs, en_para = python_docs(per_language)
    ja_docs, ja_para = man_pages(per_language)
    queries = en_para + exact_queries(en_docs, "en") + ja_para + exact_queries(ja_docs, "ja")
    return en_docs + ja_docs, queries
