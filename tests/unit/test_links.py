"""Signed one-tap links: shape, verification, expiry, tampering."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import pytest

from recruiter.notify.links import ACTIONS, card_links, sign_link, verify_link

SECRET = "s3cret-bearer-token"
NOW = 1_800_000_000.0


def _parts(url: str) -> tuple[str, int, int, str]:
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    return split.path.rsplit("/", 1)[1], int(query["m"]), int(query["exp"]), query["sig"]


def test_link_shape() -> None:
    url = sign_link("https://rr.example.org/base/", SECRET, "send", 42, 1_900_000_000)
    assert url.startswith("https://rr.example.org/base/cb/send?m=42&exp=1900000000&sig=")
    action, message_id, expires, sig = _parts(url)
    assert (action, message_id, expires) == ("send", 42, 1_900_000_000)
    assert len(sig) == 64 and int(sig, 16) >= 0


def test_signature_uses_a_derived_key() -> None:
    url = sign_link("http://x", SECRET, "send", 1, 2)
    sig = _parts(url)[3]
    raw = hmac.new(SECRET.encode(), b"send\n1\n2", hashlib.sha256).hexdigest()
    key = hmac.new(SECRET.encode(), b"recruiter-responder/cb", hashlib.sha256).digest()
    assert sig != raw
    assert sig == hmac.new(key, b"send\n1\n2", hashlib.sha256).hexdigest()


def test_verify_accepts_its_own_links() -> None:
    links = card_links("http://cb.test", SECRET, 7, now=NOW)
    assert set(links) == set(ACTIONS) == {"send", "decline", "ignore"}
    for action, url in links.items():
        got_action, message_id, expires, sig = _parts(url)
        assert got_action == action and message_id == 7
        assert expires == int(NOW) + 7 * 86400
        assert verify_link(SECRET, action, message_id, expires, sig, now=NOW)
        assert verify_link(SECRET, action, message_id, expires, sig, now=expires)


def test_verify_rejects_expired() -> None:
    url = card_links("http://cb.test", SECRET, 7, now=NOW, ttl_seconds=60)["send"]
    action, message_id, expires, sig = _parts(url)
    assert expires == int(NOW) + 60
    assert not verify_link(SECRET, action, message_id, expires, sig, now=expires + 1)


@pytest.mark.parametrize(
    "change",
    [
        {"action": "decline"},
        {"message_id": 8},
        {"expires": 9_999_999_999},
        {"secret": "other-secret"},
        {"sig": "0" * 64},
        {"sig": "not-hex"},
        {"sig": ""},
        {"action": "SEND"},
    ],
)
def test_verify_rejects_tampering(change: dict[str, object]) -> None:
    url = sign_link("http://cb.test", SECRET, "send", 7, int(NOW) + 100)
    action, message_id, expires, sig = _parts(url)
    values: dict[str, object] = {
        "secret": SECRET, "action": action, "message_id": message_id, "expires": expires, "sig": sig,
    }
    values.update(change)
    assert not verify_link(
        str(values["secret"]), str(values["action"]), int(str(values["message_id"])),
        int(str(values["expires"])), str(values["sig"]), now=NOW,
    )


def test_verify_rejects_uppercase_hex_and_nan_time() -> None:
    url = sign_link("http://cb.test", SECRET, "send", 7, int(NOW) + 100)
    _, _, expires, sig = _parts(url)
    assert not verify_link(SECRET, "send", 7, expires, sig.upper(), now=NOW)
    assert not verify_link(SECRET, "send", 7, expires, sig, now=float("nan"))


def test_empty_secret_or_bad_action_refuses_to_sign() -> None:
    with pytest.raises(ValueError):
        sign_link("http://cb.test", "", "send", 1, 2)
    with pytest.raises(ValueError):
        sign_link("http://cb.test", SECRET, "send/../x", 1, 2)
    with pytest.raises(ValueError):
        card_links("http://cb.test", SECRET, 1, now=NOW, ttl_seconds=0)
    assert not verify_link("", "send", 1, 2, "0" * 64, now=0)
