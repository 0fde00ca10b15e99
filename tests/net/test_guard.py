"""The SSRF guard: what it refuses, and that redirects are checked again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from kotae.errors import BackendError
from kotae.net.fetch import Fetcher
from kotae.net.guard import FetchGuard, FetchRefused
from tests.standins import SearxngStandIn

PAGE = ("Page", "<html><body><p>Hello there, this is a page.</p></body></html>")


@pytest.fixture
def site() -> Iterator[SearxngStandIn]:
    s = SearxngStandIn({"/page": PAGE})
    yield s
    s.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://127.0.0.2/",
        "http://[::1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "file:///etc/passwd",
        "gopher://example.com/",
    ],
)
def test_private_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused):
        FetchGuard().check(url)


def test_allow_list_is_exact() -> None:
    guard = FetchGuard(["127.0.0.1"])
    guard.check("http://127.0.0.1:8080/x")
    with pytest.raises(FetchRefused):
        guard.check("http://127.0.0.2/")
    FetchGuard(["127.0.0.0/8"]).check("http://127.0.0.2/")


def test_fetch_follows_allowed_redirects_and_refuses_private_ones(
    site: SearxngStandIn,
) -> None:
    fetcher = Fetcher(FetchGuard(["127.0.0.1"]))
    site.redirects["/hop"] = "/page"
    page = asyncio.run(fetcher.get(f"{site.url}/hop"))
    assert page.status == 200 and b"Hello there" in page.body
    site.redirects["/escape"] = f"http://127.0.0.2:{site.url.rsplit(':', 1)[1]}/page"
    with pytest.raises(FetchRefused):
        asyncio.run(fetcher.get(f"{site.url}/escape"))
    site.redirects["/loop"] = "/loop"
    with pytest.raises(BackendError):
        asyncio.run(fetcher.get(f"{site.url}/loop"))


def test_size_cap(site: SearxngStandIn) -> None:
    site.pages["/big"] = ("Big", "x" * 100_000)
    page = asyncio.run(Fetcher(FetchGuard(["127.0.0.1"]), max_bytes=1000).get(f"{site.url}/big"))
    assert len(page.body) == 1000
