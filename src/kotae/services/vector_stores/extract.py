"""Text out of uploaded files: txt, md, json, source code, html, pdf, docx."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import PurePath
from typing import ClassVar

from kotae.errors import InvalidRequest

TEXT_SUFFIXES = {
    ".txt",
    ".md",
    ".markdown",
    ".rst",
    ".csv",
    ".tsv",
    ".log",
    ".py",
    ".js",
    ".ts",
    ".tsx",
    ".jsx",
    ".java",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".go",
    ".rs",
    ".rb",
    ".php",
    ".sh",
    ".css",
    ".sql",
    ".yaml",
    ".yml",
    ".toml",
    ".ini",
    ".tex",
    ".kt",
    ".swift",
    ".scala",
}


class UnsupportedFile(InvalidRequest):
    """The file's type cannot be read (OpenAI: `unsupported_file`)."""


class InvalidFile(InvalidRequest):
    """The file claims a type it does not hold, or is damaged (OpenAI: `invalid_file`)."""


def extract_text(filename: str, data: bytes) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".pdf" or data.startswith(b"%PDF-"):
        return _pdf(data)
    if suffix == ".docx":
        return _docx(data)
    if suffix in (".html", ".htm"):
        return _html(_decode(data))
    if suffix == ".json":
        text = _decode(data)
        try:
            return json.dumps(json.loads(text), ensure_ascii=False, indent=1)
        except ValueError as exc:
            raise InvalidFile(f"{filename} is not valid JSON: {exc}") from exc
    if suffix in TEXT_SUFFIXES or not suffix:
        return _decode(data)
    raise UnsupportedFile(f"Files of type '{suffix}' are not supported for search.")


def _decode(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise UnsupportedFile("The file is binary, not text.")
    for encoding in ("utf-8-sig", "cp932", "euc-jp"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidFile("The file's text encoding is not UTF-8, Shift_JIS or EUC-JP.")


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InvalidFile(f"The PDF could not be read: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise InvalidFile("The PDF has no extractable text (is it scanned images?).")
    return text


def _docx(data: bytes) -> str:
    import zipfile

    from docx import Document

    try:
        doc = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InvalidFile(f"The .docx file could not be read: {exc}") from exc
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(p for p in parts if p.strip())


class _TextOnly(HTMLParser):
    SKIP: ClassVar[set[str]] = {"script", "style", "noscript", "template"}
    BLOCK: ClassVar[set[str]] = {
        "p",
        "div",
        "br",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "section",
        "article",
        "pre",
        "blockquote",
    }

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
