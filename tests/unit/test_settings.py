"""Settings: the original deployment's names load unchanged; bad values name their variable."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from recruiter.errors import ConfigError
from recruiter.settings import (
    DEFAULT_DB,
    LLMEndpoint,
    MailboxSettings,
    SecretUrl,
    Settings,
    load_settings,
    settings_from,
)

REPO = Path(__file__).resolve().parents[2]

ORIGINAL = {
    "IMAP_MAILBOXES": "me,spam",
    "IMAP_ME_HOST": "mail.example.org", "IMAP_ME_USER": "me@example.org", "IMAP_ME_PASS": "pw-me-1234",
    "IMAP_SPAM_HOST": "mail.example.org", "IMAP_SPAM_USER": "spam@example.org", "IMAP_SPAM_PASS": "pw-spam-123",
    "SMTP_HOST": "smtp.example.org", "SMTP_PORT": "587", "SMTP_USER": "me@example.org", "SMTP_PASSWORD": "smtp-pw",
    "SMTP_FROM_ADDR": "me@example.org", "SMTP_FROM_NAME": "Alex Example",
    "LLAMA_SWAP_URL": "http://llama-swap:8080", "LLAMA_SWAP_MODEL": "qwen3-8b",
    "GPT_MINI_ENDPOINT": "https://relay.example.org/v1", "GPT_MINI_API_KEY": "relay-key-xyz",
    "GPT_MINI_MODEL": "gpt-mini",
    "CLAUDE_AGENT_URL": "http://agent", "CLAUDE_AGENT_TOKEN": "agent-token",
    "TELEGRAM_BOT_TOKEN": "123:abc-token", "TELEGRAM_CHAT_ID": "42",
    "CALLBACK_BASE_URL": "https://rr.example.org", "WEBHOOK_BEARER_TOKEN": "bearer-secret",
    "DB_CONNECTION_STRING": "postgresql+asyncpg://rr:dbpass@db:5432/recruiter_responder",
    "GMAIL_IMAP_USER": "x@gmail.com", "GMAIL_IMAP_PASS": "gm-pass",
}


def test_original_deployment_names_load_unchanged() -> None:
    settings = settings_from(ORIGINAL)
    assert [m.name for m in settings.mailboxes] == ["me", "spam"]
    me = settings.mailboxes[0]
    assert (me.host, me.port, me.tls, me.folder, me.drafts) == ("mail.example.org", 993, "ssl", "INBOX", None)
    assert [t.tier for t in settings.llm_tiers] == ["llama-swap", "gpt-mini"]
    assert settings.llm_tiers[1].base_url == "https://relay.example.org"
    assert settings.db_url.get_secret_value().startswith("postgresql+asyncpg://")
    assert "me@example.org" in settings.owner_addresses


def test_secrets_are_listed_for_redaction_and_hidden_from_repr() -> None:
    settings = settings_from(ORIGINAL)
    for secret in ("pw-me-1234", "relay-key-xyz", "123:abc-token", "bearer-secret", "dbpass"):
        assert secret in settings.secrets
        assert secret not in repr(settings)


def test_no_configuration_gives_embedded_defaults() -> None:
    settings = settings_from({})
    assert settings.db_url.get_secret_value() == DEFAULT_DB
    assert settings.mailboxes == ()
    assert not settings.llm_configured
    assert settings.ics_dir == Path("events")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"IMAP_MAILBOXES": "me"}, "IMAP_ME_HOST"),
        ({**ORIGINAL, "IMAP_ME_PORT": "nine"}, "IMAP_ME_PORT"),
        ({**ORIGINAL, "IMAP_ME_TLS": "starttls"}, "IMAP_ME_TLS"),
        ({"IMAP_MAILBOXES": "me,bad-name"}, "IMAP_MAILBOXES"),
        ({"DB_CONNECTION_STRING": "mysql://x"}, "DB_CONNECTION_STRING"),
        ({"LLAMA_SWAP_URL": "http://x"}, "LLAMA_SWAP_MODEL"),
        ({"LLAMA_SWAP_URL": "not a url", "LLAMA_SWAP_MODEL": "m"}, "LLAMA_SWAP_URL"),
        ({"TELEGRAM_BOT_TOKEN": "1:x"}, "TELEGRAM_CHAT_ID"),
        ({"OWNER_PROFILE": "/nonexistent/profile.md"}, "OWNER_PROFILE"),
        ({"RETRY_MAX_ATTEMPTS": "0"}, "RETRY_MAX_ATTEMPTS"),
        ({"RETRY_MAX_ATTEMPTS": "5.0"}, "RETRY_MAX_ATTEMPTS"),
        ({"LEASE_SECONDS": "nan"}, "LEASE_SECONDS"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"CALDAV_URL": "ftp://x"}, "CALDAV_URL"),
        ({"CALLBACK_SIGNING_KEY": "bearer-secret-0123", "WEBHOOK_BEARER_TOKEN": "bearer-secret-0123"},
         "CALLBACK_SIGNING_KEY"),
    ],
)
def test_bad_setting_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(env)
    assert info.value.variable == variable
    assert str(info.value).startswith(variable)


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LLAMA_SWAP_URL=http://from-file:1\nLLAMA_SWAP_MODEL=file-model\n")
    settings = load_settings(env_file, environ={"LLAMA_SWAP_MODEL": "env-model"})
    assert settings.llm_tiers[0].base_url == "http://from-file:1"
    assert settings.llm_tiers[0].model == "env-model"


def test_a_mailbox_ca_file_must_be_there(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({**ORIGINAL, "IMAP_ME_CA_FILE": str(tmp_path / "missing.pem")})
    assert "IMAP_ME_CA_FILE" in str(caught.value)
    (tmp_path / "ca.pem").write_text("x")
    me = settings_from({**ORIGINAL, "IMAP_ME_CA_FILE": str(tmp_path / "ca.pem")}).mailboxes[0]
    assert me.ca_file == tmp_path / "ca.pem" and me.tls == "ssl" and me.port == 993


# Every secret variable set, each to a value of its own.
EVERY_SECRET = {
    **ORIGINAL, "LLAMA_SWAP_API_KEY": "llama-key-5f1c", "LLAMA_SWAP_FALLBACK_MODEL": "qwen3-4b",
    "CALDAV_URL": "https://dav.example.org", "CALDAV_USER": "me", "CALDAV_PASSWORD": "caldav-pw-77e0",
    "CALLBACK_SIGNING_KEY": "link-signing-key-0123456789", "SMTP_PASSWORD": "smtp-pw-c41b",
}
SECRET_NAME = re.compile(r"pass|token|key|secret", re.IGNORECASE)


def _fields(cls: type) -> dict[str, Any]:
    """A settings class's fields and their types (Annotated unwrapped)."""
    if issubclass(cls, BaseModel):
        hints = {name: f.annotation for name, f in cls.model_fields.items()}
    else:
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        hints = {name: typing.get_type_hints(cls)[name] for name in hints}
    return {name: typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
            for name, hint in hints.items()}


def _settings_classes(cls: type = Settings) -> list[type]:
    """Settings and every model or dataclass its fields hold (in tuples too), however deep."""
    found = [cls]
    for hint in _fields(cls).values():
        for arg in (hint, *typing.get_args(hint)):
            if isinstance(arg, type) and (issubclass(arg, BaseModel) or dataclasses.is_dataclass(arg)) \
                    and arg not in found:
                found += [c for c in _settings_classes(arg) if c not in found]
    return found


def test_every_field_named_like_a_secret_is_a_secret_str() -> None:
    classes = _settings_classes()
    assert {Settings, MailboxSettings, LLMEndpoint} <= set(classes)
    looked = 0
    for cls in classes:
        for name, hint in _fields(cls).items():
            if SECRET_NAME.search(name):
                looked += 1
                assert isinstance(hint, type) and issubclass(hint, SecretStr), f"{cls.__name__}.{name}: {hint}"
    assert looked >= 7
    assert _fields(Settings)["db_url"] is SecretUrl  # its password is the secret


def test_every_secret_field_value_is_redacted_and_never_shown() -> None:
    settings = settings_from(EVERY_SECRET)
    values: list[str] = []
    for owner in (settings, *settings.mailboxes, *settings.llm_tiers):
        for name, hint in _fields(type(owner)).items():
            if isinstance(hint, type) and issubclass(hint, SecretStr):
                secret = getattr(owner, name)
                assert isinstance(secret, SecretStr) and secret.get_secret_value(), f"{owner!r}.{name} unset"
                values.append(secret.get_secret_value())
    assert "postgresql+asyncpg://rr:dbpass@db:5432/recruiter_responder" in values
    values[values.index("postgresql+asyncpg://rr:dbpass@db:5432/recruiter_responder")] = "dbpass"
    assert len(set(values)) >= 10
    assert set(values) <= set(settings.secrets)
    shown = [repr(settings), str(settings), repr(settings.model_dump()), settings.model_dump_json(),
             repr(settings.mailboxes), str(settings.mailboxes), repr(settings.llm_tiers),
             *(repr(dataclasses.asdict(m)) for m in settings.mailboxes), f"{settings}", f"{settings!r}"]
    for text in shown:
        for value in values:
            assert value not in text


@pytest.mark.parametrize("name", [n for n, hint in _fields(Settings).items()
                                  if isinstance(hint, type) and issubclass(hint, SecretStr) and n != "db_url"])
def test_a_secret_field_is_redacted_without_being_listed(name: str) -> None:
    """Whatever SecretStr field Settings has, its value reaches the log redactor: nothing to keep in step."""
    value = f"unique-{name}-value-0123456789"
    settings = Settings(**{name: value})
    assert value in settings.secrets
    assert value not in repr(settings) and value not in settings.model_dump_json()


def test_a_mailbox_or_tier_added_by_code_is_redacted_too() -> None:
    mailbox = MailboxSettings(name="x", host="h", port=993, user="u", password="mailbox-pw-9a8b",  # type: ignore[arg-type]
                              tls="ssl", folder="INBOX", drafts=None, address="u@example.org")
    tier = LLMEndpoint("gpt-mini", "https://relay.example.org", "m", "tier-key-31d7")  # type: ignore[arg-type]
    settings = Settings(mailboxes=(mailbox,), llm_tiers=(tier,))
    assert {"mailbox-pw-9a8b", "tier-key-31d7"} <= set(settings.secrets)
    assert "mailbox-pw-9a8b" not in repr(mailbox) and "tier-key-31d7" not in repr(tier)


def test_env_example_documents_every_variable() -> None:
    """Every variable settings.py reads (a field's, a mailbox's, or one named in its code) has a line in
    .env.example, set or commented out."""
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    source = (REPO / "recruiter" / "settings.py").read_text()
    read = {str(f.validation_alias) for f in Settings.model_fields.values() if f.validation_alias}
    suffixes = set(re.findall(r'"[a-z_]+": "([A-Z_]+)"', source))  # IMAP_<NAME>_<suffix>
    read |= set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"', source)) - suffixes
    read |= {f"IMAP_ME_{suffix}" for suffix in suffixes}
    assert len(read) > 60
    assert sorted(read - documented) == []


def test_a_variable_fills_only_the_field_it_names() -> None:
    """OWNER_ADDRESSES is read into owner_addresses with the mailboxes' addresses, and a variable spelt like a
    field (DB_URL, API_URL, MAILBOXES) sets nothing."""
    settings = settings_from({**ORIGINAL, "OWNER_ADDRESSES": "Alex@Home.example, other@example.org",
                              "DB_URL": "mysql://x", "API_URL": "not a url", "MAILBOXES": "x", "LOG_FORMAT": "JSON"})
    assert settings.owner_addresses == {"alex@home.example", "other@example.org", "me@example.org",
                                        "spam@example.org"}
    assert settings.db_url.get_secret_value().startswith("postgresql+asyncpg://")
    assert settings.api_url == "http://127.0.0.1:8080" and len(settings.mailboxes) == 2
    assert settings.log_format == "json"


def test_the_placeholder_llm_key_is_not_redacted() -> None:
    """Without LLAMA_SWAP_API_KEY the key is the placeholder "none": redacting it would blank every "none" in
    the logs; a key that is set is redacted."""
    from recruiter.settings import settings_from

    base = {"LLAMA_SWAP_URL": "http://127.0.0.1:9", "LLAMA_SWAP_MODEL": "m"}
    assert "none" not in settings_from(base).secrets
    assert "sk-real-key" in settings_from({**base, "LLAMA_SWAP_API_KEY": "sk-real-key"}).secrets
