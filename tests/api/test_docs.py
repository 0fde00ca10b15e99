"""/docs works offline: the page and every asset it names come from kotae itself."""

from __future__ import annotations

import re

import httpx

from tests.helpers import Server


def test_docs_load_nothing_from_outside(server: Server) -> None:
    root = server.base_url.removesuffix("/v1")
    page = httpx.get(f"{root}/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    for url in urls:
        assert not url.startswith(("http:", "https:", "//")), f"{url} leaves the machine"
        assert httpx.get(f"{root}{url}").status_code == 200, url
    bundle = httpx.get(f"{root}/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert httpx.get(f"{root}/redoc").status_code == 404
