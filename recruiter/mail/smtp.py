"""Outbound mail: raw RFC 5322 bytes handed to an SMTP server through aiosmtplib.

The conversation is driven step by step (connect, STARTTLS, AUTH, MAIL, RCPT, DATA) so that a
failure can be placed on the right side of the one line that matters for "exactly once":

- before the message data was sent, or when the server answered the data with an error, nothing
  was delivered: :class:`DependencyUnavailable` (unreachable, timeout, 4xx) or
  :class:`PermanentError` (5xx refusal) — the caller may let the owner try again;
- after the data was sent, when the connection died or timed out before the server's answer:
  :class:`MaybeSent` — the server may have accepted it; the caller must never send it again.

The password is only ever handed to aiosmtplib; no error message or log line carries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiosmtplib
import structlog

from recruiter.errors import DependencyUnavailable, MaybeSent, PermanentError
from recruiter.mail.tls import tls_context

log = structlog.get_logger()
SmtpTls = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class SmtpSettings:
    """One SMTP submission account."""

    host: str
    port: int = 587
    tls: SmtpTls = "starttls"
    user: str = ""
    password: str = field(default="", repr=False)
    from_addr: str = ""
    from_name: str = ""
    ca_file: Path | None = None
    timeout: float = 30.0


class SmtpSender:
    """Sends raw messages through one SMTP server, one connection per message."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"SmtpSender(host={self.settings.host!r}, port={self.settings.port}, tls={self.settings.tls!r})"

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        context = tls_context(s.ca_file) if s.tls != "none" else None
        return aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout, use_tls=s.tls == "ssl",
            start_tls=s.tls == "starttls", tls_context=context,
        )

    async def send(self, raw: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        """Deliver ``raw`` to ``recipients`` with envelope ``sender``; returns the server's answer to DATA.

        Raises DependencyUnavailable / PermanentError when nothing was delivered, MaybeSent when the
        data was sent but the answer is unknown.
        """
        if not recipients:
            raise PermanentError("the message has no recipients", reason="smtp_no_recipients")
        client = self._client()
        where = f"{self.settings.host}:{self.settings.port}"
        data_sent = False
        try:
            await client.connect()
            if self.settings.user:
                await client.login(self.settings.user, self.settings.password)
            await client.mail(sender)
            refused = []
            for rcpt in recipients:
                try:
                    await client.rcpt(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(exc)
            if refused:
                raise _refusal(refused, where)
            data_sent = True
            response = await client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            # The server answered (even to DATA): it did not take the message.
            raise _answered(exc, where) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            what = f"SMTP {where}: {type(exc).__name__}"
            if data_sent:
                raise MaybeSent(f"{what} after the message data was sent", dependency="smtp") from None
            raise DependencyUnavailable(f"{what} ({_safe(exc)})", dependency="smtp") from None
        finally:
            await _quit(client)
        log.info("smtp.sent", server=where, recipients=len(recipients), answer=response.message[:200])
        return f"{response.code} {response.message}"[:500]


def _refusal(refused: list[aiosmtplib.SMTPRecipientRefused], where: str) -> Exception:
    """One error for refused recipients: permanent when any refusal is permanent (5xx)."""
    detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refused)[:500]
    message = f"SMTP {where} refused recipients: {detail}"
    if any(r.code >= 500 for r in refused):
        return PermanentError(message, reason="smtp_recipient_refused", status=max(r.code for r in refused))
    return DependencyUnavailable(message, dependency="smtp", status=refused[0].code)


def _answered(exc: aiosmtplib.SMTPResponseException, where: str) -> Exception:
    message = f"SMTP {where} answered {exc.code} {exc.message}"[:500]
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        message = f"SMTP {where} refused the login ({exc.code})"
    if exc.code >= 500:
        return PermanentError(message, reason="smtp_5xx", status=exc.code)
    return DependencyUnavailable(message, dependency="smtp", status=exc.code)


def _safe(exc: BaseException) -> str:
    """A short description of a driver error without anything an argument could have put into it."""
    text = str(exc)
    return text[:200] if text else type(exc).__name__


async def _quit(client: aiosmtplib.SMTP) -> None:
    """QUIT politely when the connection still works, else just close it; never raises."""
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
