"""Settings: read once from ``NOTIFIER_*`` environment variables into one typed object.

Every setting is documented in README.md with its default and unit; units live in the names.
"""

from __future__ import annotations

import ipaddress
import math
import os
import ssl
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Extra time a worker may spend on one attempt beyond the HTTP timeout (rendering, database).
ATTEMPT_OVERHEAD_S = 5.0

DEFAULT_RETRY_SCHEDULE_S = (0, 10, 60, 300, 1800, 7200, 21600, 43200)


def _comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` → ``("a", "b", "c")``: how list settings are written."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


class ConfigurationError(Exception):
    """A setting is missing or has a bad value; start-up cannot go on."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///var/notifier.db"
    broker_url: str = "filesystem://var/broker"
    server_hostname: str = "localhost:8000"
    preferred_url_scheme: str = "http"
    retry_schedule: Annotated[tuple[float, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE_S
    retry_after_max_s: float = Field(3600.0, ge=0)
    send_timeout_s: float = Field(10.0, gt=0)
    max_failures: int = Field(3, ge=1)
    visibility_timeout_s: float = Field(3600.0, gt=0)
    scheduler_interval_s: float = Field(1.0, gt=0)
    max_in_flight_per_endpoint: int = Field(8, ge=1)
    scheduler_batch: int = Field(500, ge=1)
    queue_prefix: str = Field("notifier", pattern=r"^[A-Za-z0-9_.-]+$")
    allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()
    user_agent: str = "notifier"
    log_level: str = "INFO"
    delivery_concurrency: int = Field(8, ge=1)
    flower_port: int = Field(5555, ge=0, le=65535)

    # e-mail
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_s: float = Field(10.0, gt=0)
    mail_sender: str = "notifier@localhost"
    email_code_ttl_s: float = Field(7 * 24 * 3600, gt=0)

    # chat services
    slack_username: str = "notifier"
    flowdock_api_url: str = "https://api.flowdock.com"
    hipchat_api_url: str = "https://api.hipchat.com"

    # the HTTP API
    service_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    api_port: int = Field(8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(1_048_576, ge=1024)

    # the web UI: how long a sign-in lasts, and a `notifier ui-link` link
    ui_session_ttl_s: float = Field(8 * 3600, gt=0)
    ui_link_ttl_s: float = Field(600, gt=0)
    ui_base_url: str | None = None  # where people open the UI; default http://127.0.0.1:<api_port>

    # operations: metrics, logs, ledger retention
    metrics_port: int | None = Field(None, ge=1, le=65535)  # workers' /metrics; unset: off
    metrics_dir: str | None = None  # prefork children's metric files; default: a temp folder
    metrics_token: SecretStr | None = None  # when set, the API's /metrics wants this bearer
    metrics_cache_s: float = Field(5.0, ge=0)
    log_format: Literal["text", "json"] = "text"
    ledger_retention_days: float = Field(30.0, gt=0)
    retention_interval_s: float = Field(3600.0, gt=0)
    retention_batch: int = Field(1000, ge=1)

    # hostile input: rate limits (uses per requester or address per hour) and caps
    email_confirmations_per_address_per_hour: int = Field(3, ge=1)
    email_confirmations_per_requester_per_hour: int = Field(20, ge=1)
    test_notifications_per_requester_per_hour: int = Field(60, ge=1)
    redeliveries_per_requester_per_hour: int = Field(60, ge=1)
    redelivery_max_deliveries: int = Field(1000, ge=1)  # deliveries one bulk redelivery sends
    max_notifications_per_repository: int = Field(100, ge=1)

    # TLS for outgoing HTTPS: our client certificate, and whom we trust
    webhook_client_cert: str | None = None
    webhook_client_key: str | None = None
    ca_bundle: str | None = None

    # outages and messages that keep failing
    database_wait_s: float = Field(30.0, gt=0)
    outage_log_interval_s: float = Field(60.0, gt=0)
    fanout_max_tries: int = Field(5, ge=1, le=100)

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value):
        if isinstance(value, str):
            parts = _comma_list(value)
            if not parts:
                raise ValueError("needs at least one delay in seconds, e.g. 0,10,60")
            try:
                value = tuple(float(p) for p in parts)
            except ValueError:
                raise ValueError(f"must be comma-separated seconds, got {value!r}") from None
        if any(not math.isfinite(delay) or delay < 0 for delay in value):
            raise ValueError("delays must be finite and not negative")
        return value

    @field_validator("service_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value):
        if isinstance(value, str):
            value = _comma_list(value)
        plain = [t.get_secret_value() if isinstance(t, SecretStr) else str(t) for t in value]
        if any(len(token) < 16 for token in plain):
            raise ValueError("each service token must be at least 16 characters long")
        return value

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value):
        if isinstance(value, str):
            value = _comma_list(value)
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network in CIDR form") from None
        return tuple(value)

    @field_validator("broker_url", "database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018  (reading it validates host:port)
        except ValueError:
            raise ValueError("is not a valid URL: its host:port part cannot be read") from None
        if not parts.scheme:
            raise ValueError("is not a URL: it needs a scheme such as redis:// or sqlite://")
        return value

    @field_validator("preferred_url_scheme")
    @classmethod
    def _check_scheme(cls, value: str) -> str:
        if value not in ("http", "https"):
            raise ValueError("must be http or https")
        return value

    @field_validator("webhook_client_cert", "webhook_client_key", "ca_bundle")
    @classmethod
    def _check_readable(cls, value: str | None) -> str | None:
        if value and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            raise ValueError(f"cannot read the file {value!r}")
        return value or None

    @model_validator(mode="after")
    def _check_client_pair(self):
        if bool(self.webhook_client_cert) != bool(self.webhook_client_key):
            raise ValueError("NOTIFIER_WEBHOOK_CLIENT_CERT and NOTIFIER_WEBHOOK_CLIENT_KEY "
                             "go together: set both or neither")
        if self.client_cert:
            try:
                ssl.create_default_context().load_cert_chain(*self.client_cert)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    "NOTIFIER_WEBHOOK_CLIENT_CERT and NOTIFIER_WEBHOOK_CLIENT_KEY are not a "
                    f"usable certificate and key pair: {exc.strerror or exc}") from None
        return self

    @model_validator(mode="after")
    def _check_smtp_login(self):
        if self.smtp_username and self.smtp_password and self.smtp_security == "none":
            raise ValueError("NOTIFIER_SMTP_USERNAME and NOTIFIER_SMTP_PASSWORD would be sent in "
                             "plain text: set NOTIFIER_SMTP_SECURITY to starttls or tls")
        return self

    @model_validator(mode="after")
    def _check_visibility(self):
        longest_attempt_s = self.send_timeout_s + ATTEMPT_OVERHEAD_S
        if self.visibility_timeout_s <= longest_attempt_s:
            raise ValueError(
                f"NOTIFIER_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s:g}) must exceed the "
                f"longest attempt, NOTIFIER_SEND_TIMEOUT_S + {ATTEMPT_OVERHEAD_S:g} "
                f"= {longest_attempt_s:g} seconds"
            )
        return self

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule)

    @property
    def claim_timeout_s(self) -> float:
        """How long a worker owns a delivery it took; after that another worker may take it."""
        return self.send_timeout_s + ATTEMPT_OVERHEAD_S

    @property
    def database_wait_bound_s(self) -> float:
        """How long a task waits in place for an unreachable database before it puts its
        message back in the queue: never so long that the broker would hand it out again."""
        return min(self.database_wait_s, self.visibility_timeout_s / 2)

    @property
    def client_cert(self) -> tuple[str, str] | None:
        if self.webhook_client_cert and self.webhook_client_key:
            return self.webhook_client_cert, self.webhook_client_key
        return None

    @property
    def ui_url(self) -> str:
        """The web UI's address, without a trailing slash."""
        return (self.ui_base_url or f"http://127.0.0.1:{self.api_port}").rstrip("/")

    @property
    def fanout_queue(self) -> str:
        return f"{self.queue_prefix}.fanout"

    @property
    def delivery_queue(self) -> str:
        return f"{self.queue_prefix}.delivery"


def load_settings(**overrides) -> Settings:
    """Read the environment; a bad value raises ConfigurationError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            problems.append(f"NOTIFIER_{str(error['loc'][0]).upper()}: {message}")
        else:
            problems.append(message)
    return "bad setting: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return load_settings()
