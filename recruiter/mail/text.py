"""Mail bodies → the short plain text an LLM (or the rules tier) should read.

HTML becomes text without scripts, styles or hidden elements; quoted history and signatures are cut;
the result is capped. Every function here is total: any ``str`` in, a ``str`` out, no exceptions.
"""

from __future__ import annotations

import html as htmllib
import re

import structlog

log = structlog.get_logger()

# Zero-width and invisible formatting characters used to hide text or defeat filters.
ZERO_WIDTH = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0]")

# Runs of blanks are collapsed by making every blank a space and then replacing runs of two or more
# spaces: the same result as one character-class pattern, an order of magnitude faster on long text.
_BLANKS = ("\t", "\f", "\v")
_HTML_SPACE = ("\t", "\r", "\n", "\f", "\v")  # in HTML source a line break is a blank too
_SPACE_RUN = re.compile("  +")
_BLANK_LINES = re.compile(r"\n{3,}")
_MAX_HTML_CHARS = 1_000_000  # the text is capped at a few thousand chars anyway; this bounds the time
_LINE_MARK = "\ue000"  # private-use character: a line break to be
_DROP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe",
                        "button", "select", "textarea", "math"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                        "source", "track", "wbr"})
_BLOCK_TAGS = frozenset({"p", "div", "tr", "table", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                         "blockquote", "section", "article", "header", "footer", "pre", "address", "dd", "dt",
                         "center", "form", "hr", "br", "main", "nav", "aside", "figure", "figcaption"})
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|"
    r"opacity\s*:\s*0(?![.\d]*[1-9])|max-height\s*:\s*0(?![.\d]*[1-9])|(?<![-\w])height\s*:\s*0(?:px)?\s*(?:;|$)",
    re.IGNORECASE,
)

_REPLY_VERBS = (r"wrote|schrieb|a\s+écrit|escribió|schreef|ha\s+scritto|escreveu|napisał(?:\(a\))?|"
                r"napisała|skrev|kirjoitti|írta")
_REPLY_OPENERS = r"On|Am|Le|El|Op|Il|Em|W\s+dniu|Den|Dne|Dnia"
_ATTRIBUTION = re.compile(rf"^\s*(?:{_REPLY_OPENERS})\b.{{0,300}}\b(?:{_REPLY_VERBS})\b[^:\n]{{0,80}}:\s*$",
                          re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(?:original\s+message|ursprüngliche\s+nachricht|message\s+d'origine|mensaje\s+original|"
    r"oorspronkelijk\s+bericht|messaggio\s+originale|mensagem\s+original|wiadomość\s+oryginalna|"
    r"originalmeddelande|reply\s+above\s+this\s+line)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded\s+message|weitergeleitete\s+nachricht|message\s+transf[ée]r[ée]|"
    r"mensaje\s+reenviado|doorgestuurd\s+bericht|messaggio\s+inoltrato|mensagem\s+encaminhada)\s*-{2,}|"
    r"begin\s+forwarded\s+message\s*:|anfang\s+der\s+weitergeleiteten\s+nachricht\s*:|"
    r"d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée]\s*:|inicio\s+del\s+mensaje\s+reenviado\s*:)\s*$",
    re.IGNORECASE,
)
_HEADER_FIELD = re.compile(r"^\s*\*?[^\s:*][^:]{0,30}\*?\s*:\s*\S")
_DATE_FIELD = re.compile(r"^\s*\*?(?:date|sent|datum|gesendet|envoyé|fecha|enviado|verzonden|inviato|data|"
                         r"wysłano|skickat)\s*\*?\s*:", re.IGNORECASE)
_MAX_FORWARDS = 5  # forwards of forwards: deeper ones are trimmed like history
_SEPARATOR = re.compile(r"^\s*(?:_{10,}|-{20,}|={20,})\s*$")
_FROM_WORDS = r"from|von|de|van|da|od|från|fra"
_FROM_LINE = re.compile(rf"^\s*\*?(?:{_FROM_WORDS})\s*\*?\s*:\s*\S", re.IGNORECASE)
# How every line that can start history begins (see _history_start): a blank line (it may join the next
# line's attribution), "-", "_", "=" or "*", an attribution opener ("W" alone, as "W" + next line reads
# "W dniu …") or a From-line word. One match rules out most lines, where the checks take five.
_MAYBE_HISTORY = re.compile(rf"\s*(?:$|[-_=*]|W(?:\s|$)|(?:{_REPLY_OPENERS})|(?:{_FROM_WORDS}))", re.IGNORECASE)
_SENT_LINE = re.compile(
    r"^\s*\*?(?:sent|date|to|subject|gesendet|datum|an|betreff|envoyé|date|à|objet|enviado|fecha|para|"
    r"asunto|verzonden|datum|aan|onderwerp|inviato|oggetto|enviada|assunto|wysłano|temat|do|skickat|ämne)"
    r"\s*\*?\s*:",
    re.IGNORECASE,
)
_SIG_DELIMITER = re.compile(r"^(?:-- ?|--|—|__)\s*$")
_MOBILE = re.compile(
    r"^\s*(?:sent\s+from\s+my\s+\w+|sent\s+from\s+(?:outlook|mail|yahoo\s+mail)\s+for\s+\w+|get\s+outlook\s+for\s+\w+|"
    r"sent\s+from\s+mobile|von\s+meinem\s+\w+\s+gesendet|gesendet\s+von\s+meinem\s+\w+|envoyé\s+de\s+mon\s+\w+|"
    r"enviado\s+desde\s+mi\s+\w+|enviado\s+do\s+meu\s+\w+|verzonden\s+(?:vanaf|met)\s+mijn\s+\w+|"
    r"inviato\s+da(?:l\s+mio)?\s+\w+|wysłane\s+z\s+\w+)\b.{0,40}$",
    re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"^\s*(?:\*+\s*)?(?:confidentiality\s+notice|disclaimer\b|important\s+notice\b|legal\s+notice\b|"
    r"this\s+(?:e-?mail|message|communication)(?:\s+\([^)]*\))?(?:\s+and\s+any\s+(?:files|attachments)[^.]{0,40})?"
    r"\s+(?:is|are|may\s+contain|contains)\s+(?:strictly\s+)?(?:confidential|privileged|intended)|"
    r"the\s+information\s+(?:contained\s+)?in\s+this\s+(?:e-?mail|message)|"
    r"if\s+you\s+(?:have\s+)?(?:received|are\s+not\s+the\s+intended)\s+(?:this|the)|"
    r"diese\s+e-?mail\s+(?:enthält|ist)\s+vertrauliche|ce\s+(?:message|courriel)\s+(?:et\s+toutes|est\s+confidentiel)|"
    r"este\s+(?:mensaje|correo)\s+(?:y\s+sus\s+anexos\s+)?(?:es|son|contiene)\s+confidencial|"
    r"dit\s+(?:e-?mail)?bericht\s+is\s+vertrouwelijk|questo\s+messaggio\s+(?:è|e')\s+riservato)",
    re.IGNORECASE,
)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: scripts, styles, hidden elements (``hidden``, ``aria-hidden``,
    ``display:none``, zero size or opacity), comments and zero-width characters removed; blocks and
    ``<br>`` become line breaks. Linear in the input (one pass of our own tokenizer, no tree); never
    raises."""
    source = html[:_MAX_HTML_CHARS].replace(_LINE_MARK, "")
    extractor = _TextExtractor()
    try:
        _tokenize(source, extractor)
    except Exception:  # a bug of ours on some input: the text found so far
        log.exception("html.tokenizer_failed")
    text = "".join(extractor.parts)
    # Source line breaks are plain whitespace in HTML; only the marks become new lines.
    return _tidy(_collapse_blanks(text, _HTML_SPACE).replace(_LINE_MARK, "\n"))


# The tokenizer. html.parser is quadratic on unclosed constructs (a start tag whose quote never
# closes, "<!--" without "-->": each one rescans the rest of the document, seconds for 32 KB), so
# tags are read here, each character looked at a bounded number of times: an unclosed comment runs to
# the end of the document, and a tag that never ends (an unclosed quote) is text, as html.parser has it.
_TAG_NAME = re.compile(r"[a-zA-Z][^\t\n\r\f />\x00]*")
_ATTR_GAP = re.compile(r"[\t\n\r\f /]+")
_ATTR = re.compile(r"""([^\t\n\r\f />][^\t\n\r\f />=]*)"""
                   r"""(?:[\t\n\r\f ]*=[\t\n\r\f ]*("[^"]*(?:"|\Z)|'[^']*(?:'|\Z)|[^\t\n\r\f >]*))?""")
_RAW_TEXT = ("script", "style")  # their content is text up to their end tag, never markup


def _tokenize(source: str, out: _TextExtractor) -> None:
    """Feed ``source``'s start tags, end tags and text (entities decoded) to ``out``."""
    size, index = len(source), 0
    lower: str | None = None  # for the case-insensitive search of </script>, made when first needed
    while index < size:
        lt = source.find("<", index)
        if lt < 0:
            out.handle_data(htmllib.unescape(source[index:]))
            return
        if lt > index:
            out.handle_data(htmllib.unescape(source[index:lt]))
        following = source[lt + 1:lt + 2]
        if source.startswith("<!--", lt):
            end = source.find("-->", lt + 4)
            index = size if end < 0 else end + 3
        elif following in ("!", "?"):  # a declaration or processing instruction
            end = source.find(">", lt + 2)
            index = size if end < 0 else end + 1
        elif following == "/":
            end = source.find(">", lt + 2)
            name = _TAG_NAME.match(source, lt + 2, end if end >= 0 else size)
            if end < 0:
                out.handle_data(htmllib.unescape(source[lt:]))  # as html.parser did: text after all
                return
            if name:
                out.handle_endtag(name.group().lower())
            index = end + 1
        elif following.isascii() and following.isalpha():
            tag, index, closed = _start_tag(source, lt)
            if index < 0:  # the tag never ends: the rest is text, as html.parser made it
                out.handle_data(htmllib.unescape(source[lt:]))
                return
            out.handle_starttag(tag[0], tag[1])
            if closed:
                out.handle_endtag(tag[0])
            elif tag[0] in _RAW_TEXT:
                lower = lower if lower is not None else source.lower()
                end = lower.find("</" + tag[0], index)
                out.handle_data(source[index:size if end < 0 else end])
                index = size if end < 0 else end
        else:
            out.handle_data("<")
            index = lt + 1


def _start_tag(source: str, lt: int) -> tuple[tuple[str, list[tuple[str, str | None]]], int, bool]:
    """((tag, attributes), index after the tag, self-closing) of the start tag at ``lt``; the index is
    -1 when the tag does not end before the document does."""
    name = _TAG_NAME.match(source, lt + 1)
    assert name is not None
    attrs: list[tuple[str, str | None]] = []
    index = name.end()
    size = len(source)
    while index < size:
        if source[index] == ">":
            closed = source[index - 1] == "/" and index - 1 >= name.end()
            return (name.group().lower(), attrs), index + 1, closed
        gap = _ATTR_GAP.match(source, index)
        if gap:
            index = gap.end()
            continue
        attr = _ATTR.match(source, index)
        assert attr is not None  # its first character is anything but a gap or ">"
        value = attr.group(2)
        if value is not None and value[:1] in ("'", '"'):
            value = value[1:-1] if len(value) > 1 and value[-1] == value[0] else value[1:]
        attrs.append((attr.group(1).lower(), htmllib.unescape(value) if value is not None else None))
        index = attr.end()
    return (name.group().lower(), attrs), -1, False


class _TextExtractor:
    """Collects visible text. ``open`` is the stack of open elements; from index ``skip_from`` on,
    everything is inside a dropped or hidden element. Implied ends (``<p>`` closed by the next block,
    ``<head>`` closed by ``<body>``) are applied so an unclosed hidden element does not hide the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.open: list[str] = []
        self.counts: dict[str, int] = {}  # tag -> how many are open: membership without a scan
        self.skip_from: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and self.counts.get("head"):
            self._close("head")
        elif tag in _BLOCK_TAGS and self.open and self.open[-1] == "p":
            self._close("p")
        hidden = tag in _DROP_TAGS or _is_hidden(attrs)
        if tag not in _VOID_TAGS:
            self.open.append(tag)
            self.counts[tag] = self.counts.get(tag, 0) + 1
            if hidden and self.skip_from is None:
                self.skip_from = len(self.open) - 1
        if self.skip_from is not None or hidden:
            return
        if tag in _BLOCK_TAGS:
            self.parts.append(_LINE_MARK)
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if not self.counts.get(tag):
            return  # a stray end tag
        self._close(tag)
        if self.skip_from is None and tag in _BLOCK_TAGS:
            self.parts.append(_LINE_MARK)

    def _close(self, tag: str) -> None:
        while self.open:
            top = self.open.pop()
            self.counts[top] -= 1
            if top == tag:
                break
        if self.skip_from is not None and len(self.open) <= self.skip_from:
            self.skip_from = None

    def handle_data(self, data: str) -> None:
        if self.skip_from is None:
            self.parts.append(data)


def _is_hidden(attrs: list[tuple[str, str | None]]) -> bool:
    if not attrs:  # most tags
        return False
    values = {name.lower(): (value or "") for name, value in attrs}
    if "hidden" in values or values.get("aria-hidden", "").lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(values.get("style", "")))


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():  # the checks below find nothing in ASCII text, but cost a scan each
        text = ZERO_WIDTH.sub("", text)
        text = text.replace("\u00a0", " ").replace("\u2007", " ").replace("\u202f", " ")
    # Runs of blanks never span a line break: collapsed in one pass over the text, not per line.
    lines = [line.strip() for line in _collapse_blanks(text, _BLANKS).split("\n")]
    text = "\n".join(lines)
    return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()


def _collapse_blanks(text: str, blanks: tuple[str, ...]) -> str:
    """``text`` with each run of spaces and ``blanks`` characters made one space."""
    for blank in blanks:
        text = text.replace(blank, " ")
    return _SPACE_RUN.sub(" ", text) if "  " in text else text


def trim_quoted(text: str) -> str:
    """The text without quoted history: ``>`` lines and everything from the first reply attribution
    ("On … wrote:", "Am … schrieb:", "Le … a écrit :", …), "-----Original Message-----", an Outlook
    "From:/Sent:" header block or a long separator line. A forwarded message ("---------- Forwarded
    message ---------", "Begin forwarded message:", …) is content, not history: it is kept with its
    header block (without the Date line), and its own quoted history is trimmed. When nothing new
    would remain, the input is returned unchanged rather than an empty string."""
    result = _trim_quoted(text.split("\n"), depth=0).strip()
    return result if result else text


def _trim_quoted(lines: list[str], *, depth: int) -> str:
    cut = _history_start(lines)
    forward = next((i for i, line in enumerate(lines[:cut + 1]) if _FORWARD.match(line)), None)
    if forward is None or depth >= _MAX_FORWARDS:
        return "\n".join(line for line in lines[:cut] if not line.lstrip().startswith(">"))
    block_end = _header_block_end(lines, forward + 1)
    head = [line for line in lines[:forward] if not line.lstrip().startswith(">")]
    # The forwarded mail's Date line says when it was written; left in, it reads like a proposed time.
    block = [line for line in lines[forward:block_end] if not _DATE_FIELD.match(line)]
    rest = _trim_quoted(lines[block_end:], depth=depth + 1)
    return "\n".join([*head, *block, rest])


def _header_block_end(lines: list[str], start: int) -> int:
    """The index after a forwarded message's header lines (blank lines before them are skipped)."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    while index < len(lines) and _HEADER_FIELD.match(lines[index]):
        index += 1
    return index


def _history_start(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if not _MAYBE_HISTORY.match(line):
            continue
        if _ORIGINAL.match(line) or _ATTRIBUTION.match(line):
            return index
        if index + 1 < len(lines) and _ATTRIBUTION.match(f"{line} {lines[index + 1]}") and len(line) < 200:
            return index
        if _FROM_LINE.match(line) and _has_sent_line(lines[index + 1:index + 5]):
            return index
        if _SEPARATOR.match(line) and any(_FROM_LINE.match(nxt) for nxt in lines[index + 1:index + 3]):
            return index
    return len(lines)


def _has_sent_line(lines: list[str]) -> bool:
    return sum(1 for line in lines if _SENT_LINE.match(line)) >= 2


def trim_signature(text: str) -> str:
    """The text without its signature block ("-- " delimiter), mobile footers ("Sent from my
    iPhone", "Von meinem iPhone gesendet", …) and trailing confidentiality disclaimers. When nothing
    would remain, the input is returned unchanged."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _SIG_DELIMITER.match(line) or _MOBILE.match(line) or _DISCLAIMER.match(line):
            result = "\n".join(lines[:index]).strip()
            return result if result else text
    return text


def split_signature(text: str) -> tuple[str, str]:
    """(body, signature) at the first "-- " delimiter; ("text", "") when there is none."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _SIG_DELIMITER.match(line) and index > 0:
            return "\n".join(lines[:index]).strip(), "\n".join(lines[index + 1:]).strip()
    return text, ""


def clean_body(text: str, limit: int) -> str:
    """Zero-width characters removed, quoted history and signature trimmed, whitespace tidied and
    blank lines collapsed, then capped at ``limit`` characters (cut at a word boundary, ending in
    "…"). The result is never longer than ``limit``."""
    tidy = _tidy(text)
    trimmed = _tidy(trim_signature(trim_quoted(tidy)))
    return cap(trimmed, limit)


def cap(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else cut at a word boundary and ending in "…"."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    head = text[:limit - 1]
    boundary = max(head.rfind(" "), head.rfind("\n"))
    if boundary >= limit * 0.8:
        head = head[:boundary]
    return head.rstrip() + "…"
