"""Configuration for every Hemma service, read from `HEMMA_*` environment variables.

Nothing here connects anywhere: services call `get_settings()` in their `main`
and open resources explicitly. Tests override values with environment
variables and `get_settings.cache_clear()`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MqttTarget(BaseModel):
    """A broker address parsed from `mqtt://[user[:password]@]host[:port]`."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("MQTT URL has no host")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def url(self, with_password: bool = False) -> str:
        auth = ""
        if self.username:
            auth = self.username
            if self.password:
                auth += ":" + (self.password if with_password else "***")
            auth += "@"
        return f"{'mqtts' if self.tls else 'mqtt'}://{auth}{self.host}:{self.port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEMMA_", env_file=None, extra="ignore")

    # --- shared -----------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL/TimescaleDB conninfo. Unset: `hemma demo` starts an embedded server.",
    )
    mqtt_url: str | None = Field(
        default=None,
        description="mqtt://user:password@host:port. Unset: `hemma demo` starts a broker.",
    )
    data_dir: Path = Field(
        default=Path(".hemma"), description="Where the demo keeps its database and queues."
    )
    log_level: str = "INFO"
    site_timezone: str = Field(
        default="Europe/Stockholm",
        description="The care site's IANA time zone: times shown to staff and patients, in pages and e-mails,"
        " and a CLI time given without an offset.",
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT version of gateways and ingest; 3.1.1 only for brokers without v5 (demo's amqtt).",
    )

    # --- gateway ----------------------------------------------------------
    gateway_id: str | None = None
    gateway_queue_path: Path | None = Field(
        default=None, description="SQLite store-and-forward queue. Default: <data_dir>/gateway-<id>.sqlite"
    )
    gateway_inflight_max: int = Field(default=20, ge=1, le=1000)
    gateway_batch_max_measurements: int = Field(default=50, ge=1, le=500)
    gateway_batch_linger_s: float = Field(default=0.2, ge=0.0, le=60.0)
    gateway_status_interval_s: float = Field(
        default=600.0,
        ge=5.0,
        le=86400.0,
        description="Heartbeat of the retained status with device batteries and unconfirmed messages.",
    )
    gateway_receipt_timeout_s: float = Field(
        default=60.0,
        ge=0.5,
        le=3600.0,
        description="A message without ingest's receipt is sent again after this, doubling per sending.",
    )
    gateway_receipt_timeout_max_s: float = Field(
        default=1800.0, ge=0.5, le=86400.0, description="The longest wait between two sendings."
    )
    gateway_button_pin: int | None = Field(
        default=None,
        ge=0,
        le=27,
        description="BCM GPIO pin of the box's 'kontakta mig' button (to ground). Unset: no button.",
    )
    gateway_light_pin: int | None = Field(
        default=None,
        ge=0,
        le=27,
        description="BCM GPIO pin of the box's light (an LED; gpiozero). Unset: no light.",
    )
    gateway_button_min_interval_s: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="A press this soon after the last accepted one is counted and makes no new request.",
    )

    # --- ingest -----------------------------------------------------------
    ingest_client_id: str = "hemma-ingest"
    ingest_batch_max_messages: int = Field(default=500, ge=1, le=10_000)
    ingest_flush_interval_ms: int = Field(default=5, ge=0, le=10_000)
    ingest_max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    engine_tick_seconds: float = Field(
        default=15.0,
        ge=1.0,
        le=300.0,
        description="How often ingest runs the time-driven alert rules (pending, snooze, trends, technical).",
    )

    # --- dashboard --------------------------------------------------------
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8000
    session_secret: str | None = Field(
        default=None,
        description="Signs session cookies. Unset: a random secret per process (logins end on restart).",
    )
    session_max_age_s: int = 8 * 3600
    secure_cookies: bool = Field(
        default=False, description="Set behind TLS so cookies are never sent in clear."
    )
    # The patient app (dashboard/patient_realm.py): how often its open screens ask for news (a nurse
    # took the request, a message came), and how long an enrolment link may wait to be opened.
    patient_poll_seconds: float = Field(default=10.0, ge=0.5, le=300.0)
    patient_link_valid_days: int = Field(default=14, ge=1, le=90)
    # The login brake (dashboard/login_brake.py; the limits' reasons are in docs/operations.md):
    # failures per typed username from anywhere, and per client address on any usernames (spraying).
    login_window_s: int = Field(default=900, ge=60, le=86400)
    login_account_max_failures: int = Field(default=5, ge=2, le=100)
    login_account_lock_s: int = Field(default=300, ge=10, le=86400)
    login_source_max_failures: int = Field(default=10, ge=2, le=1000)
    login_source_lock_s: int = Field(default=900, ge=10, le=86400)

    # --- escalation (`hemma escalate`) ---------------------------------------
    dashboard_url: str = Field(
        default="http://127.0.0.1:8000", description="Public base URL of the dashboard, for alert deep links."
    )
    notify_smtp_host: str | None = Field(default=None, description="Mail relay. Unset: no e-mail channel.")
    notify_smtp_port: int = 587
    notify_smtp_sender: str | None = Field(default=None, description="From address of alert mail.")
    notify_smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    notify_smtp_username: str | None = None
    notify_smtp_password: str | None = None
    notify_ntfy_url: str | None = Field(default=None, description="ntfy server base URL. Unset: no push.")
    notify_ntfy_token: str | None = None
    notify_webhook_secret: str | None = Field(
        default=None, description="HMAC secret signing webhook calls. Unset: no webhook channel."
    )
    fhir_push_interval_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="How often `hemma escalate` pushes FHIR Subscription notifications (paging.fhir_push);"
        " 0: no push from this process.",
    )

    # --- staff login (issue 12; dashboard/oidc_login.py, care/two_factor.py) -------------
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer (discovery at <issuer>/.well-known/openid-configuration), e.g."
        " Inera's IdP. Unset: no SITHS button, /login/oidc answers 404.",
    )
    oidc_client_id: str | None = Field(default=None, description="The client id Inera registered for Hemma.")
    oidc_client_secret: str | None = Field(default=None, description="Its client secret.")
    oidc_hsa_claim: str = Field(
        default="employeeHsaId",
        description="The ID token's claim with the staff member's HSA-id (Inera IdP: employeeHsaId, the"
        " SAML attribute http://sambi.se/attributes/1/employeeHsaId), matched to staff_users.hsa_id.",
    )
    oidc_scopes: str = Field(
        default="openid",
        description="Scopes asked for; the HSA claim is also asked for in the claims parameter.",
    )
    oidc_button_label: str = Field(default="Logga in med SITHS-kort", max_length=60)
    oidc_redirect_uri: str | None = Field(
        default=None,
        description="Redirect URI registered at the IdP (…/login/oidc/callback). Unset: from the request.",
    )
    totp_required: bool = Field(
        default=False,
        description="Every local (password) login needs a TOTP code; accounts without one enrol at login.",
    )

    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value is not None:
            MqttTarget.from_url(value)
        return value

    @field_validator("site_timezone")
    @classmethod
    def _check_site_timezone(cls, value: str) -> str:
        site_zone(value)  # refuse a zone this machine's tz database does not know, at start
        return value

    def site_zone(self) -> ZoneInfo:
        """The care site's zone (HEMMA_SITE_TIMEZONE) with its daylight-saving rules."""
        return site_zone(self.site_timezone)

    def mqtt(self) -> MqttTarget:
        if not self.mqtt_url:
            raise RuntimeError("HEMMA_MQTT_URL is not set")
        return MqttTarget.from_url(self.mqtt_url)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("HEMMA_DATABASE_URL is not set (or run `hemma demo`, which starts its own)")
        return self.database_url


@lru_cache(maxsize=8)
def site_zone(name: str) -> ZoneInfo:
    """An IANA zone by name; ValueError for a name the tz database does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name[:60]!r} (an IANA name such as Europe/Stockholm)") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
