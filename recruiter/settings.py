"""Settings: read once from the environment and `.env`, frozen, typed (pydantic-settings).

The names are the original deployment's, so the rewrite drops into its existing secrets.
A missing or malformed value raises ConfigError naming the variable.

Every secret is a ``SecretStr`` (the database URL a ``SecretUrl``: its password is the secret), so it shows
as ``**********`` in ``repr``, ``str`` and ``model_dump``, and ``Settings.secrets`` (what the log redactor
hides) is found by walking the model for them: a new secret field is redacted without being listed anywhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from dotenv import dotenv_values
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, SecretStr, ValidationError
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from recruiter.errors import ConfigError

DEFAULT_DB = "sqlite+aiosqlite:///./recruiter.db"
DEFAULT_TELEGRAM_BASE = "https://api.telegram.org/bot"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SecretUrl(SecretStr):
    """A URL that may carry a password (``scheme://user:password@host/…``): hidden like any secret; the
    password, as written and percent-decoded, is what the log redactor looks for."""

    def secret_forms(self) -> tuple[str, ...]:
        match = re.match(r"^[^:]+://[^:/@]+:([^@]+)@", self.get_secret_value())
        return (match.group(1), unquote(match.group(1))) if match else ()


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _http_url(value: str) -> str:
    value = value.rstrip("/")
    if value and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


def _path(value: Any) -> Any:
    return Path(value).expanduser() if isinstance(value, str) and value else value


def _comma_list(value: Any) -> Any:
    """``"a, b"`` -> ``("a", "b")`` (empty items dropped); anything else as given."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _existing_file(path: Path | None) -> Path | None:
    """An optional file; a path that names no file stops the start."""
    if path is not None and not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path


def _database_url(url: SecretUrl) -> SecretUrl:
    if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", url.get_secret_value()):
        raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return url


def _integer(value: Any) -> Any:
    """What Python's int() reads (pydantic alone would also take "5.0")."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"must be an integer, got {value!r}") from None
    return value


Integer = Annotated[int, BeforeValidator(_integer)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
ExistingFile = Annotated[Path | None, BeforeValidator(_path), AfterValidator(_existing_file)]
NO_KEY = "none"  # llama-swap's key when none is set: a placeholder, not a secret (else logs lose every "none")
ImapTls = Literal["ssl", "none"]
SmtpTls = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class MailboxSettings:
    """One IMAP account watched by one watcher."""

    name: str
    host: str
    port: Annotated[Integer, Field(ge=1)]
    user: str
    password: SecretStr
    tls: Annotated[ImapTls, BeforeValidator(_lower)]
    folder: str
    drafts: str | None  # None: the \\Drafts special-use folder, else "Drafts"
    address: str  # From address for drafts written in this mailbox
    sent: str | None = None  # None: the \\Sent special-use folder, else "Sent"
    ca_file: ExistingFile = None  # a private CA to trust for TLS, beside the system's

    def __repr__(self) -> str:
        return f"MailboxSettings(name={self.name!r}, host={self.host!r}, port={self.port}, user={self.user!r})"


# The variable behind each MailboxSettings field: IMAP_<NAME>_<suffix>.
_MAILBOX_VARIABLES = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASS", "tls": "TLS",
                      "folder": "FOLDER", "drafts": "DRAFTS", "address": "ADDRESS", "sent": "SENT",
                      "ca_file": "CA_FILE"}

LLAMA_TIERS = frozenset({"llama-swap", "llama-swap-fallback"})
TIER_ROLES = {"llama-swap": "primary", "llama-swap-fallback": "fallback", "gpt-mini": "relay"}
Dialect = Literal["llama.cpp", "openai"]


@dataclass(frozen=True)
class LLMEndpoint:
    """One OpenAI-compatible tier."""

    tier: str
    base_url: str  # without /v1
    model: str
    api_key: SecretStr = SecretStr("")
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


def _var(name: str, default: Any, **constraints: Any) -> Any:
    """A field read from the variable ``name`` (a field's own name works too, for code that builds Settings)."""
    return Field(default, validation_alias=name, **constraints)


class Settings(BaseSettings):
    """Everything the service reads from its environment. Build it with ``load_settings`` (or ``settings_from``
    a mapping); ``Settings(field=value, …)`` builds one from field values, the rest at their defaults."""

    # case_sensitive: a variable only ever fills the field that names it (not, say, OWNER_ADDRESSES owner_addresses).
    model_config = SettingsConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, extra="ignore",
                                      case_sensitive=True)

    # Derived from several variables each (IMAP_MAILBOXES and IMAP_<NAME>_*; LLAMA_SWAP_* and GPT_MINI_*;
    # OWNER_ADDRESSES and the mailboxes' and SMTP's From addresses): see _Environment.
    mailboxes: tuple[MailboxSettings, ...] = ()
    llm_tiers: tuple[LLMEndpoint, ...] = ()
    owner_addresses: frozenset[str] = frozenset()

    db_url: Annotated[SecretUrl, AfterValidator(_database_url)] = _var("DB_CONNECTION_STRING", SecretUrl(DEFAULT_DB))
    llm_timeout: float = _var("LLM_TIMEOUT_SECONDS", 120.0, ge=1)
    llm_concurrency: Integer = _var("LLM_CONCURRENCY", 1, ge=1)
    llm_breaker_threshold: Integer = _var("LLM_BREAKER_THRESHOLD", 3, ge=1)
    llm_breaker_probe_seconds: float = _var("LLM_BREAKER_PROBE_SECONDS", 60.0, ge=0.1)
    llm_breaker_max_probe_seconds: float = _var("LLM_BREAKER_MAX_PROBE_SECONDS", 600.0, ge=0.1)
    telegram_token: SecretStr = _var("TELEGRAM_BOT_TOKEN", SecretStr(""))
    telegram_chat_id: str = _var("TELEGRAM_CHAT_ID", "")
    telegram_base_url: HttpUrl = _var("TELEGRAM_API_BASE_URL", DEFAULT_TELEGRAM_BASE)
    telegram_alert_chat_id: str = _var("TELEGRAM_ALERT_CHAT_ID", "")  # unset: TELEGRAM_CHAT_ID
    telegram_timeout: float = _var("TELEGRAM_TIMEOUT_SECONDS", 20.0, ge=1)
    triage_alert_after: Integer = _var("TRIAGE_ALERT_AFTER", 5, ge=1)
    alert_remind_seconds: float = _var("ALERT_REMIND_SECONDS", 4 * 3600.0, ge=1)
    alert_flap_seconds: float = _var("ALERT_FLAP_SECONDS", 300.0, ge=0)
    alert_probe_seconds: float = _var("ALERT_PROBE_SECONDS", 60.0, ge=0.1)
    imap_alert_after_seconds: float = _var("IMAP_ALERT_AFTER_SECONDS", 600.0, ge=1)
    caldav_url: HttpUrl = _var("CALDAV_URL", "")
    caldav_user: str = _var("CALDAV_USER", "")
    caldav_password: SecretStr = _var("CALDAV_PASSWORD", SecretStr(""))
    caldav_calendar: str = _var("CALDAV_CALENDAR", "Recruiting")
    # Calendars asked for conflicts (display names, URLs or paths); empty: every calendar of the account.
    caldav_conflict_calendars: Annotated[tuple[str, ...], BeforeValidator(_comma_list)] = _var(
        "CALDAV_CONFLICT_CALENDARS", ())
    smtp_host: str = _var("SMTP_HOST", "")  # empty: /cb/send and /cb/decline answer 503
    smtp_port: Integer = _var("SMTP_PORT", 587, ge=1)  # unset: 465 with SMTP_TLS=ssl
    smtp_tls: Annotated[SmtpTls, BeforeValidator(_lower)] = _var("SMTP_TLS", "starttls")
    smtp_user: str = _var("SMTP_USER", "")
    smtp_password: SecretStr = _var("SMTP_PASSWORD", SecretStr(""))
    smtp_from_addr: str = _var("SMTP_FROM_ADDR", "")
    smtp_from_name: str = _var("SMTP_FROM_NAME", "")
    smtp_ca_file: ExistingFile = _var("SMTP_CA_FILE", None)
    smtp_timeout: float = _var("SMTP_TIMEOUT_SECONDS", 30.0, ge=1)
    ics_dir: Path = _var("ICS_DIR", Path("events"))
    drafts_dir: Path = _var("DRAFTS_DIR", Path("drafts"))
    callback_base_url: HttpUrl = _var("CALLBACK_BASE_URL", "http://localhost:8080")
    webhook_token: SecretStr = _var("WEBHOOK_BEARER_TOKEN", SecretStr(""))
    # Empty: the bearer token signs the links.
    callback_signing_key: SecretStr = _var("CALLBACK_SIGNING_KEY", SecretStr(""))
    link_ttl_seconds: Integer = _var("LINK_TTL_SECONDS", 7 * 86400, ge=60)
    owner_profile: ExistingFile = _var("OWNER_PROFILE", None)
    fx_rates_file: ExistingFile = _var("FX_RATES_FILE", None)  # unset: recruiter/data/rates.example.toml
    owner_name: str = _var("OWNER_NAME", "")  # unset: SMTP_FROM_NAME
    idle_renew_seconds: float = _var("IMAP_IDLE_RENEW_SECONDS", 25 * 60.0, ge=1)
    imap_timeout: float = _var("IMAP_TIMEOUT_SECONDS", 30.0, ge=1)
    imap_stale_seconds: float = _var("IMAP_STALE_SECONDS", 30 * 60.0, ge=5)
    max_text_chars: Integer = _var("MAX_TEXT_CHARS", 6000, ge=200)
    replay_digest_size: Integer = _var("REPLAY_DIGEST_SIZE", 10, ge=1)
    max_message_bytes: Integer = _var("MAX_MESSAGE_BYTES", 25 * 1024 * 1024, ge=1024)
    message_cpu_seconds: float = _var("MESSAGE_CPU_SECONDS", 10.0, ge=0.05)
    message_helpers: Integer = _var("MESSAGE_HELPERS", 2, ge=1)
    retry_base_seconds: float = _var("RETRY_BASE_SECONDS", 30.0, ge=0)
    retry_max_seconds: float = _var("RETRY_MAX_SECONDS", 3600.0, ge=0)
    retry_max_attempts: Integer = _var("RETRY_MAX_ATTEMPTS", 10, ge=1)
    lease_seconds: float = _var("LEASE_SECONDS", 300.0, ge=5)
    poll_seconds: float = _var("POLL_SECONDS", 5.0, ge=0.05)
    db_busy_timeout: float = _var("DB_BUSY_TIMEOUT_SECONDS", 30.0, ge=0.1)
    db_alert_after_seconds: float = _var("DB_ALERT_AFTER_SECONDS", 60.0, ge=0)
    dead_notice_seconds: float = _var("DEAD_NOTICE_SECONDS", 60.0, ge=1)
    # A container's port is reached through its Service.
    http_host: str = _var("HTTP_HOST", "0.0.0.0")  # noqa: S104
    http_port: Integer = _var("HTTP_PORT", 8080, ge=0)
    api_url: HttpUrl = _var("RECRUITER_API_URL", "http://127.0.0.1:8080")  # unset: on HTTP_PORT
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = _var(
        "LOG_LEVEL", "INFO")
    log_format: Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)] = _var("LOG_FORMAT", "auto")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values handed in: ``load_settings`` reads `.env` and the environment once, merged (the
        per-mailbox variables have names no field declares), and ``_Environment`` turns them into these."""
        return (init_settings,)

    @property
    def link_key(self) -> SecretStr:
        """The key that signs and checks the card links: CALLBACK_SIGNING_KEY, else (as before it existed)
        WEBHOOK_BEARER_TOKEN; empty when neither is set."""
        return self.callback_signing_key if self.callback_signing_key.get_secret_value() else self.webhook_token

    @property
    def llm_configured(self) -> bool:
        """True when at least one LLM tier is configured (else the rules tier triages)."""
        return bool(self.llm_tiers)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for log redaction: each SecretStr in the settings, found by walking them."""
        values = [form for secret in secret_fields(self) for form in _forms(secret)]
        return tuple(dict.fromkeys(v for v in values if v and len(v) >= 4 and v != NO_KEY))


def secret_fields(value: object) -> Iterator[SecretStr]:
    """Every SecretStr in ``value``: in pydantic models and dataclasses, and the tuples, lists, sets and
    mappings they hold, however deep."""
    if isinstance(value, SecretStr):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_fields(getattr(value, name))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from secret_fields(getattr(value, f.name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from secret_fields(item)
    elif isinstance(value, tuple | list | set | frozenset):
        for item in value:
            yield from secret_fields(item)


def _forms(secret: SecretStr) -> tuple[str, ...]:
    return secret.secret_forms() if isinstance(secret, SecretUrl) else (secret.get_secret_value(),)


def _problem(error: ErrorDetails) -> str:
    """One pydantic error, said as the hand-written checks said it."""
    kind, value, ctx = error["type"], error["input"], error.get("ctx", {})
    if kind == "int_parsing":
        return f"must be an integer, got {value!r}"
    if kind == "float_parsing":
        return f"must be a number, got {value!r}"
    if kind in {"greater_than_equal", "greater_than"}:
        return f"must be at least {ctx.get('ge', ctx.get('gt')):g}, got {value}"
    if kind == "literal_error":
        choices = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of {choices.lower()}, got {str(value).lower()!r}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg'].lower()}, got {value!r}"


def _config_error(exc: ValidationError, variables: Mapping[str, str] | None = None) -> ConfigError:
    """The first error of ``exc`` as a ConfigError naming its variable (``variables``: field name → variable)."""
    error = exc.errors(include_url=False)[0]
    where = str(error["loc"][0]) if error["loc"] else ""
    return ConfigError((variables or {}).get(where, where), _problem(error))


class _Environment(PydanticBaseSettingsSource):
    """One mapping of variable names to values (`.env` overlaid by the environment): the Settings values it
    holds. Values are stripped and an empty one is unset; the variables that make up the mailboxes, the LLM
    tiers, the owner's addresses and the defaults that follow other variables are read here, and every check
    that spans variables; each error names its variable."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.values = {k: v.strip() for k, v in values.items() if v is not None and v.strip()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the whole mapping is read at once, in __call__

    def text(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def required(self, name: str, why: str) -> str:
        value = self.text(name)
        if not value:
            raise ConfigError(name, f"is required {why}")
        return value

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.values.items() if k.isupper()}
        mailboxes = self.mailboxes()
        tls = self.text("SMTP_TLS").lower()
        if self.text("SMTP_USER") and not self.text("SMTP_PASSWORD"):
            raise ConfigError("SMTP_PASSWORD", "is required when SMTP_USER is set")
        chat = self.text("TELEGRAM_CHAT_ID")
        if self.text("TELEGRAM_BOT_TOKEN") and not chat:
            raise ConfigError("TELEGRAM_CHAT_ID", "is required when TELEGRAM_BOT_TOKEN is set")
        self.check_signing_key()
        out.update(
            mailboxes=mailboxes,
            llm_tiers=self.llm_tiers(),
            owner_addresses=self.owner_addresses(mailboxes),
            SMTP_PORT=self.text("SMTP_PORT", "465" if tls == "ssl" else "587"),
            TELEGRAM_ALERT_CHAT_ID=self.text("TELEGRAM_ALERT_CHAT_ID", chat),
            OWNER_NAME=self.text("OWNER_NAME", self.text("SMTP_FROM_NAME")),
            RECRUITER_API_URL=self.text("RECRUITER_API_URL", f"http://127.0.0.1:{self.http_port()}"),
        )
        return out

    def http_port(self) -> str:
        port = self.text("HTTP_PORT", "8080")
        return str(int(port)) if port.isdigit() else port  # else HTTP_PORT's own check names it

    def mailboxes(self) -> tuple[MailboxSettings, ...]:
        names = [n.strip() for n in self.text("IMAP_MAILBOXES").split(",") if n.strip()]
        for name in names:
            if not _NAME.match(name):
                raise ConfigError("IMAP_MAILBOXES", f"mailbox name {name!r} must be letters, digits or _")
        if len({n.lower() for n in names}) != len(names):
            raise ConfigError("IMAP_MAILBOXES", "names a mailbox twice")
        return tuple(self.mailbox(name) for name in names)

    def mailbox(self, name: str) -> MailboxSettings:
        prefix = f"IMAP_{name.upper()}_"
        why = f"because IMAP_MAILBOXES names {name!r}"
        host = self.required(prefix + "HOST", why)
        tls = self.text(prefix + "TLS", "ssl").lower()
        user = self.required(prefix + "USER", why)
        password = self.required(prefix + "PASS", why)
        try:
            return MailboxSettings(
                name=name.lower(), host=host,
                port=self.text(prefix + "PORT", "993" if tls == "ssl" else "143"),  # type: ignore[arg-type]
                user=user, password=password,  # type: ignore[arg-type]
                tls=tls,  # type: ignore[arg-type]
                folder=self.text(prefix + "FOLDER", "INBOX"),
                drafts=self.text(prefix + "DRAFTS") or None,
                address=self.text(prefix + "ADDRESS", user if "@" in user else self.text("SMTP_FROM_ADDR", user)),
                sent=self.text(prefix + "SENT") or None,
                ca_file=self.text(prefix + "CA_FILE") or None,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            raise _config_error(exc, {k: prefix + v for k, v in _MAILBOX_VARIABLES.items()}) from None

    def llm_tiers(self) -> tuple[LLMEndpoint, ...]:
        tiers: list[LLMEndpoint] = []
        swap = self.url("LLAMA_SWAP_URL")
        if swap:
            model = self.required("LLAMA_SWAP_MODEL", "when LLAMA_SWAP_URL is set")
            key = SecretStr(self.text("LLAMA_SWAP_API_KEY", NO_KEY))
            tiers.append(LLMEndpoint("llama-swap", swap, model, key))
            fallback = self.text("LLAMA_SWAP_FALLBACK_MODEL")
            if fallback:
                tiers.append(LLMEndpoint("llama-swap-fallback", swap, fallback, key))
        relay = self.url("GPT_MINI_ENDPOINT")
        if relay:
            effort = self.text("GPT_MINI_REASONING_EFFORT").lower()
            if effort and not re.fullmatch(r"[a-z]{1,20}", effort):
                raise ConfigError("GPT_MINI_REASONING_EFFORT",
                                  f"must be one word (e.g. minimal, low), got {effort!r}")
            tiers.append(LLMEndpoint(
                "gpt-mini",
                relay.removesuffix("/v1"),
                self.required("GPT_MINI_MODEL", "when GPT_MINI_ENDPOINT is set"),
                SecretStr(self.required("GPT_MINI_API_KEY", "when GPT_MINI_ENDPOINT is set")),
                reasoning_effort=effort,
            ))
        return tuple(tiers)

    def url(self, name: str) -> str:
        try:
            return _http_url(self.text(name))
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None

    def owner_addresses(self, mailboxes: tuple[MailboxSettings, ...]) -> frozenset[str]:
        addresses = {a.strip().lower() for a in self.text("OWNER_ADDRESSES").split(",") if a.strip()}
        addresses |= {m.address.lower() for m in mailboxes if "@" in m.address}
        if "@" in self.text("SMTP_FROM_ADDR"):
            addresses.add(self.text("SMTP_FROM_ADDR").lower())
        return frozenset(addresses)

    def check_signing_key(self) -> None:
        """CALLBACK_SIGNING_KEY: its own key for the card links, so the /api bearer cannot mint a Send link."""
        key = self.text("CALLBACK_SIGNING_KEY")
        if key and len(key) < 16:
            raise ConfigError("CALLBACK_SIGNING_KEY", "must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        if key and key == self.text("WEBHOOK_BEARER_TOKEN"):
            raise ConfigError("CALLBACK_SIGNING_KEY", "must differ from WEBHOOK_BEARER_TOKEN (that is the point of it)")


def settings_from(values: Mapping[str, str]) -> Settings:
    """Build Settings from one mapping of variable names to values; a bad value raises ConfigError."""
    try:
        return Settings(**_Environment(Settings, values)())
    except ValidationError as exc:
        raise _config_error(exc) from None


def load_settings(env_file: Path | None = Path(".env"), environ: Mapping[str, str] | None = None) -> Settings:
    """Read `.env` (if present) overlaid by the process environment; the environment wins."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return settings_from(merged)
