"""The one SSRF guard: every URL the server fetches on a user's behalf (web pages, image
URLs, hub files) is checked here, and again at every redirect.

Refused unless allowed by KOTAE_FETCH_ALLOW_HOSTS: loopback, private, link-local,
multicast, reserved and unspecified addresses, IPv4 and IPv6 (mapped forms too), however the
host is written (names, decimal or hex IPs) — the check is on what the name resolves to."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from kotae.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchRefused(InvalidRequest):
    """The URL points where the server may not go."""


class FetchGuard:
    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._hosts: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry)

    @staticmethod
    def _forbidden(ip: Address) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
            or not ip.is_global
        )

    def _allowed(self, host: str, ip: Address) -> bool:
        if host in self._hosts or str(ip) in self._hosts:
            return True
        return any(ip in net for net in self._networks if ip.version == net.version)

    def check(self, url: str) -> list[Address]:
        """The addresses `url` may be fetched from; raises FetchRefused otherwise."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(f"Only http and https URLs can be fetched: {url}")
        host = (parts.hostname or "").lower()
        if not host:
            raise FetchRefused(f"The URL has no host: {url}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise FetchRefused(f"Bad port in {url}") from exc
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchRefused(f"Cannot resolve host '{host}'.") from exc
        addresses = []
        for info in infos:
            ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if self._forbidden(ip) and not self._allowed(host, ip):
                raise FetchRefused(
                    f"Refusing to fetch {url}: it resolves to {ip}, a private or reserved "
                    "address (allow it with KOTAE_FETCH_ALLOW_HOSTS)."
                )
            addresses.append(ip)
        return addresses
