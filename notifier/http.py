"""The one HTTP helper every method sends through: policy, timeout, no redirects, and what a
response means (delivered, try again, stop).

Error texts are written here, never copied from requests' exceptions, which quote the URL and
so any token inside it.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from notifier import __version__
from notifier.errors import PermanentDeliveryError, ReceiverGone, RetryableDeliveryError
from notifier.netpolicy import (ForbiddenAddress, Network, Unresolvable, resolve,
                                worker_refusal)

EXCERPT_BYTES = 2048
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    response_excerpt: str
    duration_ms: int


class PolicyAdapter(HTTPAdapter):
    """Connects to the address the network policy checked, keeping Host, SNI and cert checks."""

    def __init__(self, allowed: tuple[Network, ...], *, https: bool):
        super().__init__(max_retries=0)
        self._allowed = allowed
        self._https = https

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        hostname = host_params["host"]
        port = host_params["port"] or (443 if self._https else 80)
        request.headers = CaseInsensitiveDict(request.headers or {})
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        if host_params["port"] is not None:
            host_header += f":{host_params['port']}"
        request.headers["Host"] = host_header
        if self._https:
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        ip = resolve(hostname, port, self._allowed)
        host_params["host"] = f"[{ip}]" if ip.version == 6 else str(ip)
        return host_params, pool_kwargs


class HttpClient:
    """POSTs JSON under the network policy; raises DeliveryError subclasses on failure."""

    def __init__(self, *, timeout_s: float, allowed: tuple[Network, ...], user_agent: str,
                 retry_after_max_s: float, client_cert: tuple[str, str] | None = None,
                 verify: bool | str = True):
        self.timeout_s = timeout_s
        self.retry_after_max_s = retry_after_max_s
        self.allowed = allowed
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("http://", PolicyAdapter(allowed, https=False))
        self.session.mount("https://", PolicyAdapter(allowed, https=True))
        self.session.headers["User-Agent"] = f"{user_agent}/{__version__}"
        self.client_cert = client_cert
        self.session.verify = verify

    def post_json(self, url: str, body: bytes, headers: dict[str, str] | None = None, *,
                  present_client_cert: bool = False) -> HttpResult:
        """POST ``body`` (already-serialised JSON) to ``url``; a 2xx answer returns.

        ``present_client_cert``: show our TLS client certificate (webhooks only), if configured.
        """
        check_url(url)
        started = time.monotonic()
        try:
            response = self.session.post(
                url, data=body, timeout=self.timeout_s, allow_redirects=False,
                headers={"Content-Type": "application/json", **(headers or {})},
                cert=self.client_cert if present_client_cert else None,
            )
        except Unresolvable as exc:
            raise RetryableDeliveryError("dns", str(exc)) from None
        except ForbiddenAddress as exc:
            raise RetryableDeliveryError("forbidden_address",
                                         worker_refusal(exc, self.allowed)) from None
        except requests.Timeout:
            raise RetryableDeliveryError(
                "timeout", f"no answer within {self.timeout_s:g} s"
            ) from None
        except requests.exceptions.SSLError:
            raise RetryableDeliveryError("tls", "TLS handshake or certificate check failed") from None
        except requests.ConnectionError:
            raise RetryableDeliveryError("connection", "could not connect to the receiver") from None
        except requests.RequestException as exc:
            raise RetryableDeliveryError("request", f"request failed: {type(exc).__name__}") from None
        duration_ms = int((time.monotonic() - started) * 1000)
        return self._classify(response, duration_ms)

    def _classify(self, response: requests.Response, duration_ms: int) -> HttpResult:
        excerpt = response.content[:EXCERPT_BYTES].decode("utf-8", "replace")
        status = response.status_code
        if 200 <= status < 300:
            return HttpResult(status, excerpt, duration_ms)
        details = dict(status_code=status, response_excerpt=excerpt)
        if status == 410:
            raise ReceiverGone("gone", "receiver answered 410 Gone", **details)
        retry_after_s = None
        if status in RETRY_AFTER_STATUSES:
            retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after_s is not None:
                retry_after_s = min(retry_after_s, self.retry_after_max_s)
        kind = "redirect" if 300 <= status < 400 else "http_status"
        raise RetryableDeliveryError(
            kind, f"receiver answered HTTP {status}", retry_after_s=retry_after_s, **details
        )


def encode_body(data: Any) -> bytes:
    """Serialise once, compactly: these exact bytes are signed (webhooks) and sent."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def check_url(url: str) -> None:
    """Only http(s) URLs with a host are sent to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentDeliveryError("invalid_url", "URL must be http(s) with a host")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
