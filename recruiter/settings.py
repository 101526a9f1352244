"""Settings: read once from the environment and `.env`, frozen, typed.

The names are the original deployment's, so the rewrite drops into its existing secrets.
A missing or malformed value raises ConfigError naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from dotenv import dotenv_values

from recruiter.errors import ConfigError

DEFAULT_DB = "sqlite+aiosqlite:///./recruiter.db"
DEFAULT_TELEGRAM_BASE = "https://api.telegram.org/bot"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

ImapTls = Literal["ssl", "none"]
SmtpTls = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class MailboxSettings:
    """One IMAP account watched by one watcher."""

    name: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    tls: ImapTls
    folder: str
    drafts: str | None  # None: the \\Drafts special-use folder, else "Drafts"
    address: str  # From address for drafts written in this mailbox
    sent: str | None = None  # None: the \\Sent special-use folder, else "Sent"
    ca_file: Path | None = None  # a private CA to trust for TLS, beside the system's

    def __repr__(self) -> str:  # never show the password
        return f"MailboxSettings(name={self.name!r}, host={self.host!r}, port={self.port}, user={self.user!r})"


LLAMA_TIERS = frozenset({"llama-swap", "llama-swap-fallback"})
TIER_ROLES = {"llama-swap": "primary", "llama-swap-fallback": "fallback", "gpt-mini": "relay"}
Dialect = Literal["llama.cpp", "openai"]


@dataclass(frozen=True)
class LLMEndpoint:
    """One OpenAI-compatible tier."""

    tier: str
    base_url: str  # without /v1
    model: str
    api_key: str = field(repr=False, default="")
    reasoning_effort: str = ""  # sent as OpenAI's ``reasoning_effort`` when set (openai dialect only)

    @property
    def dialect(self) -> Dialect:
        """``llama.cpp`` for the llama-swap tiers (they take llama.cpp's extra fields, e.g.
        ``chat_template_kwargs``); ``openai`` for any other tier, which gets only what the OpenAI
        chat completions API documents (a relay in front of api.openai.com refuses anything else)."""
        return "llama.cpp" if self.tier in LLAMA_TIERS else "openai"

    @property
    def role(self) -> str:
        """What the tier is for, in logs: ``primary``, ``fallback`` or ``relay`` (else the tier's name)."""
        return TIER_ROLES.get(self.tier, self.tier)


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment. Build it with ``load_settings``."""

    mailboxes: tuple[MailboxSettings, ...] = ()
    db_url: str = field(default=DEFAULT_DB, repr=False)
    llm_tiers: tuple[LLMEndpoint, ...] = ()
    llm_timeout: float = 120.0
    llm_concurrency: int = 1
    llm_breaker_threshold: int = 3
    llm_breaker_probe_seconds: float = 60.0
    llm_breaker_max_probe_seconds: float = 600.0
    telegram_token: str = field(default="", repr=False)
    telegram_chat_id: str = ""
    telegram_base_url: str = DEFAULT_TELEGRAM_BASE
    telegram_alert_chat_id: str = ""
    telegram_timeout: float = 20.0
    triage_alert_after: int = 5
    alert_remind_seconds: float = 4 * 3600
    alert_flap_seconds: float = 300.0
    alert_probe_seconds: float = 60.0
    imap_alert_after_seconds: float = 600.0
    caldav_url: str = ""
    caldav_user: str = ""
    caldav_password: str = field(default="", repr=False)
    caldav_calendar: str = "Recruiting"
    smtp_host: str = ""  # empty: /cb/send and /cb/decline answer 503
    smtp_port: int = 587
    smtp_tls: SmtpTls = "starttls"
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from_addr: str = ""
    smtp_from_name: str = ""
    smtp_ca_file: Path | None = None
    smtp_timeout: float = 30.0
    ics_dir: Path = Path("events")
    drafts_dir: Path = Path("drafts")
    callback_base_url: str = "http://localhost:8080"
    webhook_token: str = field(default="", repr=False)
    callback_signing_key: str = field(default="", repr=False)  # empty: the bearer token signs the links
    link_ttl_seconds: int = 7 * 86400
    owner_profile: Path | None = None
    owner_name: str = ""
    owner_addresses: frozenset[str] = frozenset()
    idle_renew_seconds: float = 25 * 60
    imap_timeout: float = 30.0
    imap_stale_seconds: float = 30 * 60
    max_text_chars: int = 6000
    replay_digest_size: int = 10
    max_message_bytes: int = 25 * 1024 * 1024
    message_cpu_seconds: float = 10.0
    message_helpers: int = 2
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    retry_max_attempts: int = 10
    lease_seconds: float = 300.0
    poll_seconds: float = 5.0
    db_busy_timeout: float = 30.0
    db_alert_after_seconds: float = 60.0
    dead_notice_seconds: float = 60.0
    http_host: str = "0.0.0.0"  # noqa: S104 — a container's port is reached through its Service
    http_port: int = 8080
    api_url: str = "http://127.0.0.1:8080"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @property
    def link_key(self) -> str:
        """The key that signs and checks the card links: CALLBACK_SIGNING_KEY, else (as before it existed)
        WEBHOOK_BEARER_TOKEN; empty when neither is set."""
        return self.callback_signing_key or self.webhook_token

    @property
    def llm_configured(self) -> bool:
        """True when at least one LLM tier is configured (else the rules tier triages)."""
        return bool(self.llm_tiers)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for log redaction."""
        values = [self.telegram_token, self.caldav_password, self.webhook_token, self.smtp_password,
                  self.callback_signing_key]
        values += [m.password for m in self.mailboxes]
        values += [t.api_key for t in self.llm_tiers]
        values += [_url_password(self.db_url), unquote(_url_password(self.db_url))]  # as written and decoded
        return tuple(dict.fromkeys(v for v in values if v and len(v) >= 4))


def _url_password(url: str) -> str:
    match = re.match(r"^[^:]+://[^:/@]+:([^@]+)@", url)
    return match.group(1) if match else ""


class _Env:
    """Typed reads from one merged mapping; every error names its variable."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def text(self, name: str, default: str = "") -> str:
        value = self.values.get(name)
        return (value or "").strip() or default

    def required(self, name: str, why: str) -> str:
        value = self.text(name)
        if not value:
            raise ConfigError(name, f"is required {why}")
        return value

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, default: str = "") -> str:
        value = self.text(name, default).rstrip("/")
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ConfigError(name, f"must be an http(s) URL, got {value!r}")
        return value


def _ca_file(env: _Env, name: str) -> Path | None:
    """An optional CA bundle file; a path that names no file stops the start."""
    raw = env.text(name)
    ca_file = Path(raw).expanduser() if raw else None
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(name, f"no such file: {ca_file}")
    return ca_file


def _mailbox(env: _Env, name: str) -> MailboxSettings:
    prefix = f"IMAP_{name.upper()}_"
    why = f"because IMAP_MAILBOXES names {name!r}"
    host = env.required(prefix + "HOST", why)
    tls = env.choice(prefix + "TLS", "ssl", ("ssl", "none"))
    user = env.required(prefix + "USER", why)
    return MailboxSettings(
        name=name.lower(),
        host=host,
        port=env.integer(prefix + "PORT", 993 if tls == "ssl" else 143, minimum=1),
        user=user,
        password=env.required(prefix + "PASS", why),
        tls=tls,  # type: ignore[arg-type]
        folder=env.text(prefix + "FOLDER", "INBOX"),
        drafts=env.text(prefix + "DRAFTS") or None,
        address=env.text(prefix + "ADDRESS", user if "@" in user else env.text("SMTP_FROM_ADDR", user)),
        sent=env.text(prefix + "SENT") or None,
        ca_file=_ca_file(env, prefix + "CA_FILE"),
    )


def _mailboxes(env: _Env) -> tuple[MailboxSettings, ...]:
    names = [n.strip() for n in env.text("IMAP_MAILBOXES").split(",") if n.strip()]
    for name in names:
        if not _NAME.match(name):
            raise ConfigError("IMAP_MAILBOXES", f"mailbox name {name!r} must be letters, digits or _")
    if len({n.lower() for n in names}) != len(names):
        raise ConfigError("IMAP_MAILBOXES", "names a mailbox twice")
    return tuple(_mailbox(env, name) for name in names)


def _llm_tiers(env: _Env) -> tuple[LLMEndpoint, ...]:
    tiers: list[LLMEndpoint] = []
    swap = env.url("LLAMA_SWAP_URL")
    if swap:
        model = env.required("LLAMA_SWAP_MODEL", "when LLAMA_SWAP_URL is set")
        key = env.text("LLAMA_SWAP_API_KEY", "none")
        tiers.append(LLMEndpoint("llama-swap", swap, model, key))
        fallback = env.text("LLAMA_SWAP_FALLBACK_MODEL")
        if fallback:
            tiers.append(LLMEndpoint("llama-swap-fallback", swap, fallback, key))
    relay = env.url("GPT_MINI_ENDPOINT")
    if relay:
        effort = env.text("GPT_MINI_REASONING_EFFORT").lower()
        if effort and not re.fullmatch(r"[a-z]{1,20}", effort):
            raise ConfigError("GPT_MINI_REASONING_EFFORT", f"must be one word (e.g. minimal, low), got {effort!r}")
        tiers.append(
            LLMEndpoint(
                "gpt-mini",
                relay.removesuffix("/v1"),
                env.required("GPT_MINI_MODEL", "when GPT_MINI_ENDPOINT is set"),
                env.required("GPT_MINI_API_KEY", "when GPT_MINI_ENDPOINT is set"),
                reasoning_effort=effort,
            )
        )
    return tuple(tiers)


def _owner(env: _Env, mailboxes: tuple[MailboxSettings, ...]) -> tuple[Path | None, frozenset[str]]:
    profile_raw = env.text("OWNER_PROFILE")
    profile = Path(profile_raw).expanduser() if profile_raw else None
    if profile is not None and not profile.is_file():
        raise ConfigError("OWNER_PROFILE", f"no such file: {profile}")
    addresses = {a.strip().lower() for a in env.text("OWNER_ADDRESSES").split(",") if a.strip()}
    addresses |= {m.address.lower() for m in mailboxes if "@" in m.address}
    if "@" in env.text("SMTP_FROM_ADDR"):
        addresses.add(env.text("SMTP_FROM_ADDR").lower())
    return profile, frozenset(addresses)


def _smtp(env: _Env) -> dict[str, Any]:
    """The SMTP_* settings (none required: without SMTP_HOST the send and decline links answer 503)."""
    host = env.text("SMTP_HOST")
    tls = env.choice("SMTP_TLS", "starttls", ("starttls", "ssl", "none"))
    ca_file = _ca_file(env, "SMTP_CA_FILE")
    user, password = env.text("SMTP_USER"), env.text("SMTP_PASSWORD")
    if user and not password:
        raise ConfigError("SMTP_PASSWORD", "is required when SMTP_USER is set")
    return {
        "smtp_host": host, "smtp_port": env.integer("SMTP_PORT", 465 if tls == "ssl" else 587, minimum=1),
        "smtp_tls": tls, "smtp_user": user, "smtp_password": password,
        "smtp_from_addr": env.text("SMTP_FROM_ADDR"), "smtp_from_name": env.text("SMTP_FROM_NAME"),
        "smtp_ca_file": ca_file, "smtp_timeout": env.number("SMTP_TIMEOUT_SECONDS", 30.0, minimum=1),
    }


def _db_url(env: _Env) -> str:
    url = env.text("DB_CONNECTION_STRING", DEFAULT_DB)
    if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", url):
        raise ConfigError(
            "DB_CONNECTION_STRING",
            "must start with sqlite+aiosqlite:// or postgresql+asyncpg://",
        )
    return url


def _signing_key(env: _Env) -> str:
    """CALLBACK_SIGNING_KEY: its own key for the card links, so the /api bearer cannot mint a Send link."""
    key = env.text("CALLBACK_SIGNING_KEY")
    if key and len(key) < 16:
        raise ConfigError("CALLBACK_SIGNING_KEY", "must be at least 16 characters (e.g. `openssl rand -hex 32`)")
    if key and key == env.text("WEBHOOK_BEARER_TOKEN"):
        raise ConfigError("CALLBACK_SIGNING_KEY", "must differ from WEBHOOK_BEARER_TOKEN (that is the point of it)")
    return key


def settings_from(values: Mapping[str, str]) -> Settings:
    """Build Settings from one mapping of variable names to values."""
    env = _Env(values)
    mailboxes = _mailboxes(env)
    profile, addresses = _owner(env, mailboxes)
    token = env.text("TELEGRAM_BOT_TOKEN")
    chat = env.text("TELEGRAM_CHAT_ID")
    if token and not chat:
        raise ConfigError("TELEGRAM_CHAT_ID", "is required when TELEGRAM_BOT_TOKEN is set")
    caldav_url = env.url("CALDAV_URL")
    return Settings(
        mailboxes=mailboxes,
        db_url=_db_url(env),
        llm_tiers=_llm_tiers(env),
        llm_timeout=env.number("LLM_TIMEOUT_SECONDS", 120.0, minimum=1),
        llm_concurrency=env.integer("LLM_CONCURRENCY", 1, minimum=1),
        llm_breaker_threshold=env.integer("LLM_BREAKER_THRESHOLD", 3, minimum=1),
        llm_breaker_probe_seconds=env.number("LLM_BREAKER_PROBE_SECONDS", 60.0, minimum=0.1),
        llm_breaker_max_probe_seconds=env.number("LLM_BREAKER_MAX_PROBE_SECONDS", 600.0, minimum=0.1),
        telegram_token=token,
        telegram_chat_id=chat,
        telegram_base_url=env.url("TELEGRAM_API_BASE_URL", DEFAULT_TELEGRAM_BASE),
        telegram_alert_chat_id=env.text("TELEGRAM_ALERT_CHAT_ID", chat),
        telegram_timeout=env.number("TELEGRAM_TIMEOUT_SECONDS", 20.0, minimum=1),
        triage_alert_after=env.integer("TRIAGE_ALERT_AFTER", 5, minimum=1),
        alert_remind_seconds=env.number("ALERT_REMIND_SECONDS", 4 * 3600, minimum=1),
        alert_flap_seconds=env.number("ALERT_FLAP_SECONDS", 300.0, minimum=0),
        alert_probe_seconds=env.number("ALERT_PROBE_SECONDS", 60.0, minimum=0.1),
        imap_alert_after_seconds=env.number("IMAP_ALERT_AFTER_SECONDS", 600.0, minimum=1),
        caldav_url=caldav_url,
        caldav_user=env.text("CALDAV_USER"),
        caldav_password=env.text("CALDAV_PASSWORD"),
        caldav_calendar=env.text("CALDAV_CALENDAR", "Recruiting"),
        **_smtp(env),
        ics_dir=Path(env.text("ICS_DIR", "events")),
        drafts_dir=Path(env.text("DRAFTS_DIR", "drafts")),
        callback_base_url=env.url("CALLBACK_BASE_URL", "http://localhost:8080"),
        webhook_token=env.text("WEBHOOK_BEARER_TOKEN"),
        callback_signing_key=_signing_key(env),
        link_ttl_seconds=env.integer("LINK_TTL_SECONDS", 7 * 86400, minimum=60),
        owner_profile=profile,
        owner_name=env.text("OWNER_NAME", env.text("SMTP_FROM_NAME")),
        owner_addresses=addresses,
        idle_renew_seconds=env.number("IMAP_IDLE_RENEW_SECONDS", 25 * 60, minimum=1),
        imap_timeout=env.number("IMAP_TIMEOUT_SECONDS", 30.0, minimum=1),
        imap_stale_seconds=env.number("IMAP_STALE_SECONDS", 30 * 60, minimum=5),
        max_text_chars=env.integer("MAX_TEXT_CHARS", 6000, minimum=200),
        replay_digest_size=env.integer("REPLAY_DIGEST_SIZE", 10, minimum=1),
        max_message_bytes=env.integer("MAX_MESSAGE_BYTES", 25 * 1024 * 1024, minimum=1024),
        message_cpu_seconds=env.number("MESSAGE_CPU_SECONDS", 10.0, minimum=0.05),
        message_helpers=env.integer("MESSAGE_HELPERS", 2, minimum=1),
        retry_base_seconds=env.number("RETRY_BASE_SECONDS", 30.0, minimum=0),
        retry_max_seconds=env.number("RETRY_MAX_SECONDS", 3600.0, minimum=0),
        retry_max_attempts=env.integer("RETRY_MAX_ATTEMPTS", 10, minimum=1),
        lease_seconds=env.number("LEASE_SECONDS", 300.0, minimum=5),
        poll_seconds=env.number("POLL_SECONDS", 5.0, minimum=0.05),
        db_busy_timeout=env.number("DB_BUSY_TIMEOUT_SECONDS", 30.0, minimum=0.1),
        db_alert_after_seconds=env.number("DB_ALERT_AFTER_SECONDS", 60.0, minimum=0),
        dead_notice_seconds=env.number("DEAD_NOTICE_SECONDS", 60.0, minimum=1),
        http_host=env.text("HTTP_HOST", "0.0.0.0"),  # noqa: S104
        http_port=env.integer("HTTP_PORT", 8080, minimum=0),
        api_url=env.url("RECRUITER_API_URL", f"http://127.0.0.1:{env.integer('HTTP_PORT', 8080, minimum=0)}"),
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
        log_format=env.choice("LOG_FORMAT", "auto", ("auto", "json", "console")),  # type: ignore[arg-type]
    )


def load_settings(env_file: Path | None = Path(".env"), environ: Mapping[str, str] | None = None) -> Settings:
    """Read `.env` (if present) overlaid by the process environment; the environment wins."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return settings_from(merged)
