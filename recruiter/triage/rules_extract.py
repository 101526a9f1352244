"""Facts the rules tier pulls out of a mail: company, role, location, remote policy, compensation.

Each function returns None (or "unknown") rather than a guess it cannot point at in the mail.
"""

from __future__ import annotations

import re

from recruiter.mail.parse import ParsedMail
from recruiter.model import Remote
from recruiter.triage.prefilter import is_ats_domain
from recruiter.triage.rules_vocab import AGENCY_LABELS, CITIES, FREEMAIL_DOMAINS, MONTHS, WEEKDAYS

# Capitalised words; a dot only inside a word ("Booking.com"), so a name never runs into the next sentence.
_WORD = r"[A-Z0-9][\w&'’+-]*(?:\.[\w&'’+-]+)*"
_NAME = rf"(?P<name>{_WORD}(?:(?:[ \t]|\n(?!\s))(?:{_WORD}|&|of|and|und|de|la)){{0,3}})"
_AT = r"(?i:at|@|with|bei|chez|bij|presso|na|w)"
# In order of preference: the hiring company named outright beats the recruiter's own employer.
_COMPANY_PATTERNS = (
    re.compile(r"^(?i:company|firma|unternehmen|entreprise|société|bedrijf|empresa|azienda|client|kunde)"
               r"\s*:\s*(?P<name>[^\n]{2,60})$", re.MULTILINE),
    re.compile(rf"(?i:my|our|mein|meinen|unser|unseren|mon|notre|mijn|onze|mi|nuestro|il mio|nostro|meu|nosso)\s+"
               rf"(?i:client|kunde|kunden|mandant|klant|opdrachtgever|cliente),?\s+{_NAME}"),
    re.compile(rf"(?i:on behalf of|representing|working with|partnering with|retained by|im auftrag von|"
               rf"pour le compte de|en nombre de|namens|per conto di|em nome de)\s+{_NAME}"),
    re.compile(rf"(?i:posición|puesto|vacante|vaga|cargo)[^\n.]{{0,40}}?\s(?i:para)\s+{_NAME}"),
    re.compile(rf"{_NAME}\s+(?i:is|are)\s+(?i:hiring|looking for|growing|building|scaling|recruiting)"),
    re.compile(rf"{_NAME}\s+(?i:sucht|recrute|zoekt|busca|cerca|procura|szuka)\b"),
    re.compile(rf"(?i:role|position|opportunity|opening|stelle|poste|vacature|puesto|posizione|vaga|stanowisko)\s+"
               rf"{_AT}\s+{_NAME}"),
    re.compile(rf"(?i:recruit\w*|talent\s+\w+|sourc\w+|hiring|people\s+partner|personalberater\w*|recruteu\w*|"
               rf"recrutadora?|reclutadora?|rekruter\w*)[^\n]{{0,40}}?\s{_AT}\s+{_NAME}"),
    re.compile(rf"(?i:I'm|I am|I work|we're|we are|here)\b[^\n.]{{0,40}}?\s(?i:at|with|from|bei|chez|bij)\s+{_NAME}"),
    re.compile(rf"(?i:join|joining)\s+{_NAME}"),
)
_NOT_COMPANIES = frozenset(
    {"the", "our", "my", "we", "i", "you", "your", "a", "an", "this", "that", "it", "us", "me", "them", "team",
     "linkedin", "greenhouse", "lever", "workable", "ashby", "remote", "hybrid", "europe", "eu", "uk", "usa",
     "en", "de", "la", "le", "el", "il", "un", "une", "die", "der", "das", "een", "het", "ein", "eine"}
    | {city.lower() for city in CITIES}
    | {name for names in MONTHS.values() for name in names}
    | {name for names in WEEKDAYS.values() for name in names}
)
_MAX_DISPLAY = 200
_DISPLAY_COMPANY = (
    re.compile(r"^.+?\s+(?:at|from|@|\||-|–|bei|chez)\s+(?P<name>[^()]+?)\s*$", re.IGNORECASE),
    re.compile(r"^(?P<name>.+?)\s+(?:careers|talent(?: team| acquisition)?|recruiting|recruitment|hiring|jobs|"
               r"people team|karriere|recrutement)\s*$", re.IGNORECASE),
)

_TITLE_NOUNS = (r"Engineers?|Developer|SRE|Architect|Manager|Scientist|Designer|Analyst|Consultant|Administrator|"
                r"Programmer|Lead|Entwickler(?:in)?|Ingenieur(?:in)?|Architekt(?:in)?|Ontwikkelaar|Inżynier|"
                r"Programista|CTO|CIO|CISO")
_ROMANCE_NOUNS = (r"Ingénieure?|Développeu(?:r|se)|Architecte|Ingenier[oa]|Desarrollador(?:a)?|Arquitect[oa]|"
                  r"Sviluppat(?:ore|rice)|Ingegnere|Engenheir[oa]|Desenvolvedor(?:a)?")
_ROLE_PATTERNS = (
    re.compile(r"^(?i:role|position|job title|stelle|rolle|poste|intitulé du poste|functie|puesto|posizione|"
               r"cargo|vaga|stanowisko)\s*:\s*(?P<role>[^\n]{2,100})$", re.MULTILINE),
    re.compile(r"(?P<role>(?:(?:Head|VP|Vice President|Director)\s+(?:of\s+)?(?:[A-Z][\w&+/-]*\s?){1,3}))"),
    re.compile(rf"(?P<role>(?:(?:Senior|Sr\.|Staff|Principal|Lead|Junior|Jr\.|Chief|Distinguished)\s+){{0,2}}"
               rf"(?:[A-Z][\w+#/.-]*\s+){{0,3}}(?:{_TITLE_NOUNS})\b(?:\s+(?:II|III|IV)\b)?(?:\s*\([mwfd]/[mwfd]/[mwfd]\))?)"),
    re.compile(rf"(?P<role>(?:{_ROMANCE_NOUNS})(?:\s+(?:de\s+|d'|di\s+)?(?:[A-Z][\w+#/-]*)){{0,3}}"
               rf"(?:\s*\([mwfhd]/[mwfhd](?:/[mwfhd])?\))?)"),
)
_ROLE_LEADING = frozenset({"our", "the", "a", "an", "we", "my", "your", "this", "hi", "hello", "dear", "as", "for",
                           "new", "open", "exciting", "unser", "unsere", "notre", "nuestro", "nuestra", "ons"})
_RECRUITING_TITLE = re.compile(r"talent|recruit|hiring|sourc|\bHR\b|people|personal|recrut|reclut", re.IGNORECASE)
_ROLE_TRAILING = re.compile(r"(?:\s+(?:" + "|".join(map(re.escape, CITIES)) + r"|Remote|Hybrid|In|At|For))+$")

_CITY = re.compile(r"\b(" + "|".join(sorted(map(re.escape, CITIES), key=len, reverse=True)) + r")\b(?!\s+time)")
_LOCATION_LABEL = re.compile(r"^(?i:location|standort|arbeitsort|lieu|localisation|locatie|standplaats|"
                             r"ubicación|sede|localização|local|lokalizacja)\s*:\s*(?P<place>[^\n]{2,80})$",
                             re.MULTILINE)
_HYBRID = re.compile(r"\bhybrid|\bhybride|h[íi]brid[oa]|\bibrid[oa]|hybrydow|télétravail partiel|days? (?:a week )?in "
                     r"(?:the )?office|tage (?:pro woche )?im büro", re.IGNORECASE)
_REMOTE = re.compile(r"(?<!not )(?<!no )(?<!non-)\b(?:fully |100 ?% |remote[- ]first|remote[- ]friendly)?"
                     r"(?:remote|homeoffice|home office|télétravail|teletrabajo|remoto|da remoto|zdaln\w+|"
                     r"op afstand|thuiswerk\w*|work from anywhere|work from home|mobiles arbeiten)\b",
                     re.IGNORECASE)
_ONSITE = re.compile(r"\bon-?site\b|in[- ]office\b|\bvor ort\b|sur site|presencial|in sede|stacjonarn\w+|"
                     r"op kantoor|\bin person\b", re.IGNORECASE)

_CUR = r"(?:[£€$]|GBP|EUR|USD|CHF|PLN|SEK|DKK|NOK)"
_NUM = r"(?:\d{1,3}(?:[,.\u202f\u00a0 ]\d{3})+|\d{1,7})(?:[.,]\d+)?\s?[kK]?"
_SEP = r"\s?(?:-|–|—|to|and|bis|und|à|a|et|tot|en|do|até|y|e)\s?"
_COMPENSATION = re.compile(
    rf"{_CUR}\s?{_NUM}(?:{_SEP}{_CUR}?\s?{_NUM})?(?![\w])|"
    rf"\b{_NUM}(?:{_SEP}{_NUM})?\s?(?:{_CUR}|k€|K€|euros?\b|pounds?\b|dollars?\b|zł|złotych\b)|"
    rf"\b\d{{2,3}}\s?[kK]?\s?(?:-|–|to)\s?\d{{2,3}}\s?[kK]\b"
)


def company(mail: ParsedMail) -> str | None:
    """The hiring company: a labelled line or a phrase such as "Talent Partner at X", "on behalf of
    X" or "X is hiring" in the body or signature; else the sender's display name ("Jane at X",
    "X Careers"); else the sender's own domain when it is not a free-mail or ATS domain."""
    for text in (mail.text, mail.signature):
        for pattern in _COMPANY_PATTERNS:
            for match in pattern.finditer(text):
                name = _clean_company(match.group("name"))
                if name:
                    return name
    return _company_from_display(mail.from_name) or company_from_domain(mail.from_addr)


def _clean_company(raw: str) -> str | None:
    name = re.sub(r"(?:'s|’s)$", "", raw.strip().strip(".,;:!?)(\"'")).strip()
    words = name.split()
    while words and words[-1].lower() in _NOT_COMPANIES | {"and", "und", "of", "&", "de", "la"}:
        words.pop()
    name = " ".join(words).strip(".,;:!?)(\"'")
    if not name or name.lower() in _NOT_COMPANIES or len(name) > 60 or not re.search(r"[A-Za-z]", name):
        return None
    return name


def _company_from_display(display: str) -> str | None:
    display = display[:_MAX_DISPLAY]  # the patterns below are quadratic in it; a name is not longer
    cleaned = re.sub(r"\(via [^)]*\)|\bvia \w+$", "", display, flags=re.IGNORECASE).strip()
    for pattern in _DISPLAY_COMPANY:
        match = pattern.match(cleaned)
        if match:
            return _clean_company(match.group("name"))
    return None


def company_from_domain(addr: str) -> str | None:
    """"Northwind Analytics" from ``jane@northwind-analytics.example``; None for free-mail and ATS."""
    domain = addr.rpartition("@")[2].lower()
    if not domain or domain in FREEMAIL_DOMAINS or is_ats_domain(domain):
        return None
    label = registrable_label(domain)
    if not label:
        return None
    return " ".join(part.capitalize() for part in re.split(r"[-_]", label) if part)


def registrable_label(domain: str) -> str:
    """The organisation's label of a domain: ``acme`` for mail.acme.co.uk or acme.example.com."""
    labels = [label for label in domain.lower().split(".") if label]
    reserved = {"example", "test", "invalid", "localhost"}
    while labels and (labels[-1] in reserved or len(labels[-1]) <= 3 or labels[-1] in {"com", "info"}):
        if len(labels) == 1:
            break
        labels.pop()
    return labels[-1] if labels and labels[-1] not in reserved else ""


def is_agency_domain(domain: str) -> bool:
    """True when the organisation label of ``domain`` is a known recruitment agency's."""
    return registrable_label(domain) in AGENCY_LABELS


def role(mail: ParsedMail) -> str | None:
    """A job title: a labelled line ("Role: …"), else the first title-like phrase ("Staff Site
    Reliability Engineer", "Head of Platform", "Ingénieur DevOps") in the subject, then the body.
    Recruiting job titles (the sender's own, "Talent Acquisition Manager") are passed over."""
    label = _ROLE_PATTERNS[0].search(mail.text)
    if label:
        return label.group("role").strip()[:100]
    for text in (mail.subject, mail.text):
        matches = [m for pattern in _ROLE_PATTERNS[1:] for m in pattern.finditer(text)]
        for match in sorted(matches, key=lambda m: m.start()):
            title = _clean_role(match.group("role"))
            if title:
                return title
    return None


def _clean_role(raw: str) -> str | None:
    words = raw.strip(" .,;:-–").split()
    while words and words[0].lower() in _ROLE_LEADING:
        words.pop(0)
    title = _ROLE_TRAILING.sub("", " ".join(words))
    if len(title) < 3 or _RECRUITING_TITLE.search(title):
        return None
    return title[:100]


def location(mail: ParsedMail, remote_policy: str) -> str | None:
    """A labelled location line, else the first known city in the subject or body, else "Remote"
    when the role is remote."""
    label = _LOCATION_LABEL.search(mail.text)
    if label:
        return label.group("place").strip()[:100]
    for text in (mail.subject, mail.text):
        city = _CITY.search(text)
        if city:
            return city.group(1)
    return "Remote" if remote_policy == "remote" else None


def remote(mail: ParsedMail) -> Remote:
    """"hybrid", "remote", "onsite" or "unknown", from the wording in the subject and body."""
    text = f"{mail.subject}\n{mail.text}"
    if _HYBRID.search(text):
        return "hybrid"
    if _REMOTE.search(text):
        return "remote"
    if _ONSITE.search(text):
        return "onsite"
    return "unknown"


_NO_EQUITY = re.compile(r"\b(?:no|without)\s+(?:equity|stock options|share options|RSUs?)\b", re.IGNORECASE)
_EQUITY = re.compile(r"\b(?:equity|stock options|share options|RSUs?|ESOP|VSOP|BSPCE|Aktienoptionen|"
                     r"Mitarbeiterbeteiligung|stock-options|participaciones)\b", re.IGNORECASE)
# Industry words as a mail writes them, and the name the fit line shows; the first one in the mail wins.
_INDUSTRIES = (
    (r"crypto(?:currency|currencies)?|blockchain|web3|defi\b|nfts?\b", "crypto/web3"),
    (r"ad-?tech|programmatic advertising|advertising technology", "ad-tech"),
    (r"gambling|sports ?betting|betting|casino|igaming|sportsbook", "gambling"),
    (r"fin-?tech|payments? (?:company|platform|provider)|neobank|banking", "fintech"),
    (r"health-?tech|healthcare|medtech|digital health|e-?sant[ée]|sant[ée] num[ée]rique", "healthtech"),
    (r"insur-?tech|insurance", "insurance"),
    (r"e-?commerce|online retail|marketplace", "e-commerce"),
    (r"logistics|logistik\w*|log[íi]stica|logistique|supply chain", "logistics"),
    (r"robotics|robots?\b|robotik", "robotics"),
    (r"energy (?:company|platform)|grid[- ]forecasting|energie\w*", "energy"),
    (r"climate ?tech|clean ?tech|renewable energy|energy transition", "climate tech"),
    (r"cyber ?security|security company|embedded security", "security"),
    (r"video games?|gaming studio|game studio", "games"),
    (r"ed-?tech|education technology", "edtech"),
    (r"automotive|mobility", "mobility"),
    (r"saas\b|b2b software|developer tools|dev-?tools|cloud infrastructure", "developer tools"),
)
_INDUSTRY = re.compile("|".join(f"(?P<i{n}>\\b(?:{pattern}))" for n, (pattern, _) in enumerate(_INDUSTRIES)),
                       re.IGNORECASE)


def equity(mail: ParsedMail) -> bool | None:
    """True when the mail offers equity (stock options, RSUs, ESOP), False when it says there is none,
    None when it does not say."""
    text = f"{mail.subject}\n{mail.text}"
    if _NO_EQUITY.search(text):
        return False
    return True if _EQUITY.search(text) else None


def industry(mail: ParsedMail) -> str | None:
    """The hiring company's industry as a short name ("fintech", "crypto/web3", "ad-tech"): the first
    industry word in the subject or body, else None."""
    for text in (mail.subject, mail.text):
        match = _INDUSTRY.search(text)
        if match and match.lastgroup:
            return _INDUSTRIES[int(match.lastgroup[1:])][1]
    return None


def compensation(mail: ParsedMail) -> str | None:
    """The first money amount or range in the subject or body ("£150k-£180k", "€120.000 – €140.000",
    "85-95k€", "150-180k"), as written."""
    for text in (mail.subject, mail.text):
        match = _COMPENSATION.search(text)
        if match:
            return re.sub(r"\s+", " ", match.group(0)).strip()[:100]
    return None
