"""Chunks of about N tokens with overlap, and the terms the lexical index sees.

Tokens are counted the way a search index would: a word of Latin letters or digits is one,
each CJK character is one (Japanese has no spaces between words)."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"  # one CJK char
    r"|[^\W_]+"  # a word
    r"|[^\w\s]",  # a punctuation mark
    re.UNICODE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# snake_case names: also one term, their parts joined (get_addr_info -> getaddrinfo).
_IDENTIFIER = re.compile(r"[^\W_]+(?:_[^\W_]+)+", re.UNICODE)

AUTO_MAX_TOKENS, AUTO_OVERLAP = 800, 400


def chunk_text(text: str, max_tokens: int, overlap: int) -> list[str]:
    """Splits on token boundaries; each chunk starts `max_tokens - overlap` tokens after the
    last. Text between tokens (spaces, newlines) stays with the chunk."""
    spans = [m.span() for m in _TOKEN.finditer(text)]
    if not spans:
        return []
    step = max(1, max_tokens - overlap)
    chunks = []
    for start in range(0, len(spans), step):
        window = spans[start : start + max_tokens]
        chunk = text[window[0][0] : window[-1][1]].strip()
        if chunk:
            chunks.append(chunk)
        if start + max_tokens >= len(spans):
            break
    return chunks


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


_HIRAGANA = re.compile(r"^[\u3040-\u309f]+$")


def query_terms(text: str) -> list[str]:
    """Terms worth searching for: all-hiragana bigrams (です, ます, して...) are grammar,
    found in nearly every Japanese chunk, so they only add noise to a query."""
    return [t for t in lexical_terms(text) if not _HIRAGANA.match(t)]


def lexical_terms(text: str) -> list[str]:
    """Latin words lower-cased, and CJK runs as overlapping character bigrams: 'パスワード'
    -> パス スワ ワー ード, so a two-character Japanese word is found inside longer ones.
    A snake_case name is also one term, so an exact identifier is a rare term."""
    text = unicodedata.normalize("NFKC", text).lower()
    terms: list[str] = []
    pos = 0
    for m in _CJK.finditer(text):
        terms.extend(_words(text[pos : m.start()]))
        run = m.group()
        terms.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        pos = m.end()
    terms.extend(_words(text[pos:]))
    return terms


def _words(text: str) -> list[str]:
    words = _WORD.findall(text)
    words.extend(m.group().replace("_", "") for m in _IDENTIFIER.finditer(text))
    return words
