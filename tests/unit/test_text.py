"""Body text for the LLM: HTML conversion, quoted history, signatures, the length cap."""

from __future__ import annotations

import time

import pytest

from recruiter.mail.text import clean_body, html_to_text, split_signature, trim_quoted, trim_signature


def test_html_to_text_drops_scripts_styles_comments_and_hidden_elements() -> None:
    html = """<html><head><title>T</title><style>p{color:red}</style></head><body>
    <script>steal()</script><!-- note to self -->
    <div style="display:none">hidden preheader</div><span style="visibility: hidden">invisible</span>
    <p hidden>attr hidden</p><p aria-hidden="true">aria</p><p style="font-size:0">zero font</p>
    <noscript>enable js</noscript><p>Visible&nbsp;text &amp; more</p></body></html>"""
    text = html_to_text(html)
    assert text == "Visible text & more"


def test_html_to_text_keeps_structure_as_line_breaks() -> None:
    html = "<p>Hi Alex,</p><p>Line one<br>Line two</p><ul><li>A</li><li>B</li></ul>" \
           "<table><tr><td>Location</td><td>London</td></tr></table>"
    assert html_to_text(html) == "Hi Alex,\n\nLine one\nLine two\n\nA\n\nB\n\nLocation London"


def test_html_to_text_strips_zero_width_characters() -> None:
    assert html_to_text("<p>pro\u200bfile\u200d \ufeffand\u2060 so\u00adft</p>") == "profile and soft"


def test_html_to_text_keeps_visible_small_text() -> None:
    assert html_to_text('<p style="font-size:0.8em">small print</p>') == "small print"


@pytest.mark.parametrize("html", ["", "plain words, no tags", "<p>unclosed <b>bold", "http://example.com/x",
                                  "<" * 1000, "<div>" * 5000 + "deep" + "</div>" * 5000])
def test_html_to_text_accepts_anything(html: str) -> None:
    assert isinstance(html_to_text(html), str)


def test_deeply_nested_html_keeps_its_text() -> None:
    assert "deep" in html_to_text("<div>" * 3000 + "deep" + "</div>" * 3000)


@pytest.mark.parametrize("attribution", [
    "On Tue, 17 Nov 2026 at 10:02, Priya Shah <priya@example.org> wrote:",
    "On Tue, Nov 17, 2026 at 10:02 AM Priya Shah <priya@example.org> wrote:",
    "Am Di., 17. Nov. 2026 um 10:02 Uhr schrieb Priya Shah <priya@example.org>:",
    "Le mar. 17 nov. 2026 à 10:02, Priya Shah <priya@example.org> a écrit :",
    "El mar, 17 nov 2026 a las 10:02, Priya Shah (<priya@example.org>) escribió:",
    "Op di 17 nov. 2026 om 10:02 schreef Priya Shah <priya@example.org>:",
    "Il giorno mar 17 nov 2026 alle ore 10:02 Priya Shah <priya@example.org> ha scritto:",
    "Em ter., 17 de nov. de 2026 às 10:02, Priya Shah <priya@example.org> escreveu:",
    "-----Original Message-----",
    "-----Ursprüngliche Nachricht-----",
])
def test_trim_quoted_cuts_at_reply_attributions(attribution: str) -> None:
    text = f"Thanks, sounds good.\n\n{attribution}\nOld text that must go.\n> quoted"
    assert trim_quoted(text) == "Thanks, sounds good."


def test_trim_quoted_joins_a_wrapped_attribution_line() -> None:
    text = "New text.\n\nOn Tue, 17 Nov 2026 at 10:02, Priya Shah <\npriya@example.org> wrote:\nold"
    assert trim_quoted(text) == "New text."


@pytest.mark.parametrize("block", [
    "________________________________\nFrom: Priya Shah <priya@example.org>\nSent: Tuesday\nTo: Alex\n"
    "Subject: Staff SRE",
    "From: Priya Shah <priya@example.org>\nSent: Tuesday, 17 November 2026 10:02\nTo: Alex\nSubject: x",
    "Von: Priya Shah <priya@example.org>\nGesendet: Dienstag\nAn: Alex\nBetreff: x",
    "De : Priya Shah <priya@example.org>\nEnvoyé : mardi\nÀ : Alex\nObjet : x",
    "Van: Priya Shah <priya@example.org>\nVerzonden: dinsdag\nAan: Alex\nOnderwerp: x",
])
def test_trim_quoted_cuts_outlook_header_blocks(block: str) -> None:
    assert trim_quoted(f"Following up below.\n\n{block}\n\nOriginal body") == "Following up below."


def test_trim_quoted_drops_interleaved_quote_lines_and_keeps_answers() -> None:
    text = "> Could you share the range?\nIt is £150k-£180k.\n> And remote?\nHybrid."
    assert trim_quoted(text) == "It is £150k-£180k.\nHybrid."


def test_trim_quoted_keeps_a_lone_from_line_in_prose() -> None:
    text = "From: the team at Acme, with thanks.\nWe'd love to talk."
    assert trim_quoted(text) == text


def test_trim_quoted_returns_the_input_when_everything_is_quoted() -> None:
    text = "> only\n> quoted"
    assert trim_quoted(text) == text


@pytest.mark.parametrize("footer", [
    "-- \nPriya Shah\nTalent Partner",
    "--\nPriya",
    "Sent from my iPhone",
    "Get Outlook for Android",
    "Von meinem iPhone gesendet",
    "Envoyé de mon iPhone",
    "Enviado desde mi iPhone",
    "CONFIDENTIALITY NOTICE: This e-mail is confidential.",
    "This email and any attachments are confidential and intended solely for the addressee.",
    "The information contained in this email is privileged.",
    "If you have received this email in error, please notify the sender.",
    "Diese E-Mail enthält vertrauliche Informationen.",
])
def test_trim_signature_cuts_signatures_and_disclaimers(footer: str) -> None:
    assert trim_signature(f"Would you be open to a chat?\n\n{footer}\nmore footer") == "Would you be open to a chat?"


def test_trim_signature_keeps_text_without_a_signature() -> None:
    assert trim_signature("Hello\n\nBest,\nPriya") == "Hello\n\nBest,\nPriya"


def test_split_signature_returns_both_halves() -> None:
    assert split_signature("Body\n-- \nPriya\nTalent Partner at Acme") == ("Body", "Priya\nTalent Partner at Acme")
    assert split_signature("No signature") == ("No signature", "")


def test_clean_body_combines_and_collapses_blank_lines() -> None:
    text = "Hi\u200b Alex,\r\n\r\n\r\n\r\nA role   for you.\t\n\nOn Mon, 1 Dec 2026, X <x@y.example> wrote:\n> old\n"
    assert clean_body(text, 1000) == "Hi Alex,\n\nA role for you."


def test_clean_body_caps_at_a_word_boundary_with_an_ellipsis() -> None:
    text = " ".join(["recruiter"] * 100)
    capped = clean_body(text, 50)
    assert len(capped) <= 50
    assert capped.endswith("recruiter…")


def test_clean_body_hard_cuts_a_single_long_word() -> None:
    capped = clean_body("x" * 500, 40)
    assert capped == "x" * 39 + "…"


def test_clean_body_keeps_short_text_and_handles_zero_limit() -> None:
    assert clean_body("short", 100) == "short"
    assert clean_body("anything", 0) == ""


def test_html_without_a_head_end_tag_still_shows_the_body() -> None:
    assert html_to_text("<html><head><meta charset=utf-8><title>T</title><body><p>Visible</p>") == "Visible"


def test_an_unclosed_hidden_element_hides_only_itself() -> None:
    assert html_to_text('<div><p style="display:none">hidden<p>shown</div><p>after</p>') == "shown\n\nafter"
    assert html_to_text("<div><div hidden>hidden <b>bold</div> shown</div>after") == "shown\nafter"


def test_html_to_text_is_fast_on_tag_dense_input() -> None:
    started = time.perf_counter()
    html_to_text("<p>hello <b>world</b></p>" * 40_000 + "<div>" * 20_000 + "</span>" * 20_000)
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("marker", [
    "---------- Forwarded message ---------",  # Gmail
    "-------- Weitergeleitete Nachricht --------",  # Thunderbird, German
    "Begin forwarded message:",  # Apple Mail
    "---------- Mensaje reenviado ---------",  # Gmail, Spanish
])
def test_a_forwarded_message_is_content_not_history(marker: str) -> None:
    text = (f"FYI, see below.\n\n{marker}\n\nFrom: Nadia Haddad <nadia@fernhill.example>\nDate: Wed, 18 Nov 2026\n"
            "Subject: Engineering Manager at Fernhill\nTo: Alex <alex@example.net>\n\nHi Alex, we're hiring an "
            "Engineering Manager.\n\nOn Tue, 17 Nov 2026, Alex wrote:\n> an older reply\n")
    trimmed = trim_quoted(text)
    assert trimmed.startswith("FYI, see below.")
    assert "From: Nadia Haddad <nadia@fernhill.example>" in trimmed
    assert "we're hiring an Engineering Manager." in trimmed
    assert "an older reply" not in trimmed and "Alex wrote" not in trimmed  # the forwarded mail's own history
    assert "Wed, 18 Nov 2026" not in trimmed  # its Date line is not a proposed time


def test_a_reply_above_a_forward_still_drops_the_quoted_forward() -> None:
    text = ("Thanks, will do.\n\nOn Wed, 18 Nov 2026, Chris wrote:\n> ---------- Forwarded message ---------\n"
            "> From: someone@example.org\n> Hi\n")
    assert trim_quoted(text) == "Thanks, will do."


def test_many_nested_forwards_stay_bounded() -> None:
    text = "note\n" + "Begin forwarded message:\nFrom: a@b.example\nTo: c@d.example\n\nbody\n" * 2000
    trimmed = trim_quoted(text)
    assert trimmed.startswith("note") and len(trimmed) <= len(text)
