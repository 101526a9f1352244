"""Settings: the original deployment's names load unchanged; bad values name their variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from recruiter.errors import ConfigError
from recruiter.settings import DEFAULT_DB, load_settings, settings_from

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
    assert settings.db_url.startswith("postgresql+asyncpg://")
    assert "me@example.org" in settings.owner_addresses


def test_secrets_are_listed_for_redaction_and_hidden_from_repr() -> None:
    settings = settings_from(ORIGINAL)
    for secret in ("pw-me-1234", "relay-key-xyz", "123:abc-token", "bearer-secret", "dbpass"):
        assert secret in settings.secrets
        assert secret not in repr(settings)


def test_no_configuration_gives_embedded_defaults() -> None:
    settings = settings_from({})
    assert settings.db_url == DEFAULT_DB
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
