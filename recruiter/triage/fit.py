"""Fit: does a recruiter mail match the owner's profile? Deterministic code, no LLM.

The owner profile keeps its prose for the LLM; its ``Key: value`` lines under "## Facts" are read here
into :class:`ProfileFacts`:

- ``Level:`` the accepted levels (every level word in the line: "Staff or Principal …; Head of …").
- ``Compensation floor:`` floors with currency and region, comma-separated: "£150k base in London,
  €170k base elsewhere in the EU, plus equity" (a floor without "in …" applies anywhere; "plus
  equity" means equity is wanted).
- ``Locations:`` places (cities, countries, "the EU", "the UK") and "remote".
- ``Not interested in:`` excluded domains, comma- or slash-separated ("crypto/web3, ad-tech").

A line that is missing or cannot be read leaves its criterion "unknown"; nothing here raises on
owner-written or mail-written text, and every parser is linear in its (bounded) input.

Per criterion the verdict is ``meets``, ``misses`` or ``unknown``, with the evidence. Compensation
compares the top of a range with the floor of the job's region, in the floor's currency, using rates
from a file the owner edits (``FX_RATES_FILE``; the shipped ``data/rates.example.toml`` otherwise).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from recruiter.model import TriageResult

Verdict = Literal["meets", "misses", "unknown"]
GLYPHS: dict[Verdict, str] = {"meets": "✅", "misses": "❌", "unknown": "❓"}
# A miss on one of these puts Decline first on the card.
DECLINE_CRITERIA = frozenset({"level", "comp", "domain"})
MAX_TEXT = 1000  # every parser reads at most this much of its input

# --- places -------------------------------------------------------------------------------------

_EU_COUNTRIES = (
    "Austria", "Belgium", "Bulgaria", "Croatia", "Cyprus", "Czechia", "Czech Republic", "Denmark", "Estonia",
    "Finland", "France", "Germany", "Greece", "Hungary", "Ireland", "Italy", "Latvia", "Lithuania", "Luxembourg",
    "Malta", "Netherlands", "Poland", "Portugal", "Romania", "Slovakia", "Slovenia", "Spain", "Sweden",
    "Deutschland", "Nederland", "España", "Italia", "Polska", "Österreich",
)
_EU_CITIES = (
    "Dublin", "Cork", "Berlin", "Munich", "München", "Hamburg", "Frankfurt", "Cologne", "Köln", "Stuttgart",
    "Düsseldorf", "Leipzig", "Dresden", "Paris", "Lyon", "Toulouse", "Bordeaux", "Lille", "Nantes", "Marseille",
    "Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "The Hague", "Den Haag", "Brussels", "Bruxelles", "Antwerp",
    "Ghent", "Vienna", "Wien", "Madrid", "Barcelona", "Valencia", "Seville", "Málaga", "Malaga", "Lisbon",
    "Lisboa", "Porto", "Milan", "Milano", "Rome", "Roma", "Turin", "Torino", "Bologna", "Warsaw", "Warszawa",
    "Kraków", "Krakow", "Wrocław", "Wroclaw", "Gdańsk", "Gdansk", "Poznań", "Prague", "Praha", "Brno",
    "Budapest", "Bucharest", "Sofia", "Athens", "Tallinn", "Riga", "Vilnius", "Helsinki", "Stockholm",
    "Gothenburg", "Copenhagen",
)
_UK_PLACES = ("London", "Manchester", "Edinburgh", "Glasgow", "Cambridge", "Oxford", "Bristol", "Leeds",
              "Birmingham", "Belfast", "United Kingdom", "England", "Scotland", "Wales", "Great Britain", "UK")
_OTHER_PLACES = {
    "Switzerland": "CH", "Zurich": "CH", "Zürich": "CH", "Geneva": "CH", "Genève": "CH", "Basel": "CH",
    "Lausanne": "CH", "Norway": "NO", "Oslo": "NO", "Iceland": "IS", "Reykjavik": "IS", "Israel": "IL",
    "Tel Aviv": "IL", "Dubai": "AE", "Singapore": "SG", "Tokyo": "JP", "Japan": "JP", "Sydney": "AU",
    "Melbourne": "AU", "Australia": "AU", "Toronto": "CA", "Vancouver": "CA", "Montreal": "CA", "Canada": "CA",
    "New York": "US", "San Francisco": "US", "Seattle": "US", "Austin": "US", "Boston": "US", "Chicago": "US",
    "Los Angeles": "US", "Denver": "US", "Atlanta": "US", "Miami": "US", "USA": "US", "United States": "US",
    "US": "US",
}
# Place name (folded) -> the regions it is in, most specific first.
_PLACES: dict[str, tuple[str, ...]] = {
    **{name.casefold(): (name, "EU") for name in _EU_CITIES + _EU_COUNTRIES},
    **{name.casefold(): (name, "UK") for name in _UK_PLACES},
    **{name.casefold(): (name, region) for name, region in _OTHER_PLACES.items()},
    "eu": ("EU",), "european union": ("EU",), "uk": ("UK",),
}
_PLACE_RE = re.compile(r"\b(" + "|".join(sorted((re.escape(p) for p in _PLACES), key=len, reverse=True)) + r")\b",
                       re.IGNORECASE)
_REMOTE_WORD = re.compile(r"\bremote\b|\banywhere\b|\bwork from home\b", re.IGNORECASE)


def regions_of(place: str) -> tuple[str, ...]:
    """Every region a free-text place names: ``("Berlin", "EU")`` for "Berlin, Germany"; empty when
    no known place is in it."""
    out: list[str] = []
    for match in _PLACE_RE.finditer(place[:MAX_TEXT]):
        for region in _PLACES.get(match.group(1).casefold(), ()):
            if region not in out:
                out.append(region)
    return tuple(out)


# --- money --------------------------------------------------------------------------------------

_CURRENCY_WORDS = {
    "£": "GBP", "€": "EUR", "$": "USD", "gbp": "GBP", "eur": "EUR", "usd": "USD", "chf": "CHF", "pln": "PLN",
    "sek": "SEK", "dkk": "DKK", "nok": "NOK", "euro": "EUR", "euros": "EUR", "pound": "GBP", "pounds": "GBP",
    "dollar": "USD", "dollars": "USD", "zł": "PLN", "zloty": "PLN", "złotych": "PLN",
}
_SYMBOL = {"GBP": "£", "EUR": "€", "USD": "$"}
_CURRENCY_RE = re.compile(r"[£€$]|\b(?:gbp|eur|usd|chf|pln|sek|dkk|nok|euros?|pounds?|dollars?|zloty|złotych)\b|zł",
                          re.IGNORECASE)
# A number: thousands groups ("120.000", "95,000", "120 000") or plain digits, an optional decimal part,
# an optional multiplier. Each piece is bounded, so a scan is linear.
_AMOUNT_RE = re.compile(
    r"(?<![\d.,])(?P<int>\d{1,3}(?:[,.\u202f\u00a0 ]\d{3})+|\d{1,9})(?![\d])(?:[.,](?P<frac>\d{1,2})(?!\d))?"
    r"(?:[ \t]?(?P<mult>[kK](?![a-zA-Z])|[mM](?![a-zA-Z])|mn\b|million\b))?")
_RANGE_GAP = re.compile(r"\s*(?:-|–|—|to|bis|à|a|and|und)\s*(?:[£€$]|[A-Z]{3}\b)?\s*", re.IGNORECASE)
_PERIOD_RE = re.compile(r"/\s?(?:day|d|hour|hr|h|month|mo)\b|\bper (?:day|hour|month)\b|\b(?:daily|hourly|monthly)\b|"
                        r"\bday rate\b|\btagessatz\b|\bstundensatz\b|\bTJM\b", re.IGNORECASE)
_MIN_SALARY, _MAX_SALARY = 1_000, 100_000_000


@dataclass(frozen=True)
class Money:
    """An amount or range as written: ``top`` is the highest figure, in ``currency`` (ISO code, or None
    when the text names none)."""

    low: float
    top: float
    currency: str | None

    def show(self, amount: float | None = None) -> str:
        return money_text(self.top if amount is None else amount, self.currency)


def money_text(amount: float, currency: str | None) -> str:
    """``€170k``, ``£152.5k``, ``CHF 200k``, ``150k`` (no currency)."""
    if amount >= 1000:
        figure = f"{amount / 1000:.1f}".removesuffix(".0") + "k"
    else:
        figure = f"{amount:.0f}"
    if currency is None:
        return figure
    symbol = _SYMBOL.get(currency)
    return f"{symbol}{figure}" if symbol else f"{currency} {figure}"


def parse_money(text: str) -> Money | None:
    """The amount or range in ``text`` ("€95k", "95,000 EUR", "$180k-$220k", "£120k–£140k + equity",
    "€120.000 – €140.000", "85-95k€"), or None when it states no yearly amount (no figure, or a day
    or hourly rate). Never raises."""
    text = text[:MAX_TEXT]
    if _PERIOD_RE.search(text):
        return None
    figures: list[tuple[int, int, float, bool]] = []  # (start, end, value, has multiplier)
    for match in _AMOUNT_RE.finditer(text):
        digits = re.sub(r"[^\d]", "", match.group("int"))
        value = float(digits) + (float("0." + match.group("frac")) if match.group("frac") else 0.0)
        mult = (match.group("mult") or "").lower()
        if mult == "k":
            value *= 1_000
        elif mult:
            value *= 1_000_000
        figures.append((match.start(), match.end(), value, bool(mult)))
    # "85-95k": the first figure of a range borrows the multiplier of the second.
    for index in range(len(figures) - 1):
        start, end, value, has_mult = figures[index]
        next_start, _, next_value, next_mult = figures[index + 1]
        if not has_mult and next_mult and value < _MIN_SALARY and _RANGE_GAP.fullmatch(text, end, next_start):
            figures[index] = (start, end, value * (next_value / _base(next_value)), True)
    amounts = [value for _, _, value, _ in figures if _MIN_SALARY <= value <= _MAX_SALARY]
    if not amounts:
        return None
    currency_match = _CURRENCY_RE.search(text)
    currency = _CURRENCY_WORDS.get(currency_match.group(0).casefold()) if currency_match else None
    if currency is None and re.search(r"k€|K€", text):
        currency = "EUR"
    return Money(min(amounts), max(amounts), currency)


def _base(value: float) -> float:
    """The written figure behind a multiplied one (95000 -> 95), to carry its multiplier over."""
    for mult in (1_000_000, 1_000):
        if value >= mult:
            return value / mult
    return value


# --- levels -------------------------------------------------------------------------------------

_LEVEL_RE = re.compile(r"\b(intern|junior|jr\.?|mid[- ]level|medior|s[eé]nior|sr\.?|staff|principal|distinguished|"
                       r"lead|head|director|vp|vice president|cto|chief technology officer|manager)(?![\w])",
                       re.IGNORECASE)
_GENERIC_LEVELS = frozenset({"Lead", "Manager"})  # count only when no other level word is there
_LEVEL_ALIASES = {"jr": "Junior", "jr.": "Junior", "sr": "Senior", "sr.": "Senior", "medior": "Mid-level",
                  "sénior": "Senior",
                  "mid level": "Mid-level", "mid-level": "Mid-level", "vice president": "VP",
                  "chief technology officer": "CTO", "vp": "VP", "cto": "CTO"}


def parse_levels(text: str) -> tuple[str, ...]:
    """Every level word in ``text``, canonical and in order: ("Staff", "Principal", "Head")."""
    out: list[str] = []
    for match in _LEVEL_RE.finditer(text[:MAX_TEXT]):
        word = match.group(1).casefold()
        level = _LEVEL_ALIASES.get(word, word.capitalize())
        if level not in out:
            out.append(level)
    return tuple(out)


def level_of(role_or_level: str) -> str | None:
    """The level a job title or level names ("Staff Site Reliability Engineer" -> "Staff"), or None.
    "Lead" and "Manager" count only when no other level word is there ("Senior Lead Engineer" -> "Senior");
    "Senior" before another level is part of it ("Senior Staff Engineer" -> "Staff")."""
    levels = parse_levels(role_or_level)
    specific = [level for level in levels if level not in _GENERIC_LEVELS]
    if len(specific) > 1 and specific[0] == "Senior":
        return specific[1]
    return specific[0] if specific else (levels[0] if levels else None)


# --- domains ------------------------------------------------------------------------------------

_DOMAIN_SYNONYMS = {
    "crypto": ("crypto", "cryptocurrency", "blockchain", "web3", "defi", "nft", "token", "bitcoin", "ethereum"),
    "web3": ("web3", "crypto", "blockchain", "defi", "nft", "dao"),
    "adtech": ("adtech", "advertising", "programmatic", "ad network", "admarketplace", "martech"),
    "gambling": ("gambling", "betting", "casino", "igaming", "sportsbook", "poker", "lottery", "wagering"),
    "defense": ("defense", "defence", "military", "weapons"),
    "tobacco": ("tobacco", "vaping", "nicotine"),
}


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.casefold())


def _fold_words(text: str) -> str:
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", text.casefold()).split()) + " "


# --- the profile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """A compensation floor: ``amount`` in ``currency`` for jobs in ``region`` (None: anywhere)."""

    amount: float
    currency: str
    region: str | None

    def show(self) -> str:
        return money_text(self.amount, self.currency) + (f" {self.region}" if self.region else "") + " floor"


@dataclass(frozen=True)
class ProfileFacts:
    """The profile's facts as fit reads them; None means the profile does not say (or says it so that
    it cannot be read): that criterion's verdict is then "unknown"."""

    levels: tuple[str, ...] | None = None
    floors: tuple[Floor, ...] | None = None
    wants_equity: bool | None = None
    places: tuple[str, ...] | None = None  # regions and places accepted ("London", "EU")
    remote_ok: bool | None = None
    excluded: tuple[str, ...] | None = None


_FACT_LINE = re.compile(r"^[ \t]*(?:[-*+][ \t]+)?(?P<key>[A-Za-z][A-Za-z /-]{0,40}?)[ \t]*:[ \t]*(?P<value>[^\n]*)$",
                        re.MULTILINE)
_KEYS = {
    "level": "level", "levels": "level", "seniority": "level",
    "compensation floor": "comp", "compensation": "comp", "salary floor": "comp", "minimum compensation": "comp",
    "locations": "places", "location": "places",
    "not interested in": "excluded", "exclusions": "excluded", "excluded": "excluded",
    "excluded domains": "excluded",
}


def facts_section(profile: str) -> str:
    """The text under the "## Facts" heading (up to the next heading); the whole profile without one."""
    lines = profile.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#{1,6}\s*facts\s*$", line.strip(), re.IGNORECASE):
            body: list[str] = []
            for rest in lines[index + 1:]:
                if re.match(r"^#{1,6}\s", rest.strip()):
                    break
                body.append(rest)
            return "\n".join(body)
    return profile


def parse_profile(profile: str) -> ProfileFacts:
    """:class:`ProfileFacts` from the ``Key: value`` lines under "## Facts". Never raises."""
    values: dict[str, str] = {}
    for match in _FACT_LINE.finditer(facts_section(profile)):
        key = _KEYS.get(" ".join(match.group("key").casefold().split()))
        if key and key not in values:
            values[key] = match.group("value")[:MAX_TEXT]
    levels = parse_levels(values["level"]) if "level" in values else ()
    floors, equity = _floors(values["comp"]) if "comp" in values else ((), None)
    places, remote_ok = _places(values["places"]) if "places" in values else ((), None)
    excluded = _excluded(values["excluded"]) if "excluded" in values else ()
    return ProfileFacts(
        levels=levels or None,
        floors=floors or None,
        wants_equity=equity,
        places=places or None,
        remote_ok=remote_ok,
        excluded=excluded or None,
    )


def _floors(value: str) -> tuple[tuple[Floor, ...], bool | None]:
    floors: list[Floor] = []
    equity: bool | None = None
    for piece in re.split(r"[,;]|\bplus\b|\+", value):
        if re.search(r"\bno equity\b|\bwithout equity\b", piece, re.IGNORECASE):
            equity = False
        elif re.search(r"\bequity\b|\bstock\b|\bshares\b|\boptions\b", piece, re.IGNORECASE):
            equity = True
        money = parse_money(piece)
        if money is None or money.currency is None:
            continue
        where = re.search(r"\bin\s+(?:the\s+)?(?P<place>[^\n]+)$", piece, re.IGNORECASE)
        region: str | None = None
        if where:
            regions = regions_of(where.group("place"))
            if not regions:
                continue  # a floor for a place we cannot recognise is not applied anywhere else
            region = regions[0]
        floors.append(Floor(money.low, money.currency, region))
    return tuple(floors), equity


def _places(value: str) -> tuple[tuple[str, ...], bool | None]:
    remote_ok: bool | None = None
    places: list[str] = []
    for piece in re.split(r",|;|\bor\b", value):
        if re.search(r"\bremote\b", piece, re.IGNORECASE):
            remote_ok = not re.search(r"\bno(?:t)?\s+(?:fully\s+)?remote\b", piece, re.IGNORECASE)
            continue
        regions = regions_of(piece)
        if regions:
            places.append(regions[0])
    return tuple(dict.fromkeys(places)), remote_ok


def _excluded(value: str) -> tuple[str, ...]:
    out: list[str] = []
    for piece in re.split(r"[,;/]|\bor\b|\band\b", value):
        words = piece.split()
        if 0 < len(words) <= 2:
            out.append(" ".join(words))
    return tuple(dict.fromkeys(out))


def load_rates(path: Path | None) -> dict[str, float]:
    """Euros per unit of each currency, from ``path`` (TOML, table ``[eur_per_unit]``) or the shipped
    example. Raises ValueError for a file that is not TOML; entries that are not positive numbers are
    left out (that currency's comparisons are "unknown")."""
    if path is None:
        text = resources.files("recruiter").joinpath("data/rates.example.toml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"currency rates file is not valid TOML: {exc}") from exc
    table = data.get("eur_per_unit")
    rates: dict[str, float] = {}
    if isinstance(table, dict):
        for code, rate in table.items():
            if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
                rates[str(code).upper()] = float(rate)
    return rates


# --- the verdicts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One criterion's verdict: ``name`` is level, location, comp, equity or domain."""

    name: str
    verdict: Verdict
    evidence: str

    @property
    def glyph(self) -> str:
        return GLYPHS[self.verdict]


@dataclass(frozen=True)
class Fit:
    """Every criterion's verdict, in a fixed order: level, location, comp, equity, domain."""

    criteria: tuple[Criterion, ...]

    def line(self) -> str:
        """``Fit: ✅ level (Staff) · ✅ Berlin (EU) · ❌ comp €95k < €170k EU floor · ❓ equity not stated``"""
        return "Fit: " + self.evidence()

    def evidence(self) -> str:
        """The line without its ``Fit:`` label (the card writes the label itself)."""
        return " · ".join(f"{c.glyph} {c.evidence}" for c in self.criteria)

    def glyphs(self) -> str:
        """One glyph per criterion with its name: ``✅level ✅location ❌comp ❓equity ✅domain``."""
        return " ".join(f"{c.glyph}{c.name}" for c in self.criteria)

    def verdict(self, name: str) -> Verdict:
        return next((c.verdict for c in self.criteria if c.name == name), "unknown")

    @property
    def decline_first(self) -> bool:
        """A miss on compensation, level or an excluded domain: Decline is the first button."""
        return any(c.verdict == "misses" and c.name in DECLINE_CRITERIA for c in self.criteria)


@dataclass(frozen=True)
class FitCheck:
    """The profile's facts and the owner's currency rates: :meth:`assess` one triage verdict."""

    facts: ProfileFacts
    rates: dict[str, float]

    @classmethod
    def from_profile(cls, profile: str, rates: dict[str, float]) -> FitCheck:
        return cls(parse_profile(profile), rates)

    def assess(self, triage: TriageResult) -> Fit:
        return assess(self.facts, triage, self.rates)


def assess(facts: ProfileFacts, triage: TriageResult, rates: dict[str, float]) -> Fit:
    """Every criterion's verdict for one triage answer. Deterministic; never raises."""
    regions = regions_of(triage.location or "")
    return Fit((
        _level(facts, triage),
        _location(facts, triage, regions),
        _comp(facts, triage, regions, rates),
        _equity(facts, triage),
        _domain(facts, triage),
    ))


def _level(facts: ProfileFacts, triage: TriageResult) -> Criterion:
    level = level_of(triage.level or "") or level_of(triage.role or "")
    if level is None:
        return Criterion("level", "unknown", "level not stated")
    if facts.levels is None:
        return Criterion("level", "unknown", f"level ({level}): none in profile")
    if level in facts.levels:
        return Criterion("level", "meets", f"level ({level})")
    return Criterion("level", "misses", f"level {level}, not {'/'.join(facts.levels)}")


def _location(facts: ProfileFacts, triage: TriageResult, regions: tuple[str, ...]) -> Criterion:
    if triage.remote == "remote" and facts.remote_ok:
        where = f" ({triage.location})" if triage.location and triage.location.casefold() != "remote" else ""
        return Criterion("location", "meets", f"remote{where}")
    if not regions:
        if triage.location and triage.location.casefold() != "remote":
            return Criterion("location", "unknown", f"{triage.location} (place not known)")
        if triage.remote == "remote":
            return Criterion("location", "unknown" if facts.remote_ok is None else "misses",
                             "remote" + ("" if facts.remote_ok is None else ", not in profile"))
        return Criterion("location", "unknown", "location not stated")
    place = f"{regions[0]} ({regions[1]})" if len(regions) > 1 else regions[0]
    if facts.places is None:
        return Criterion("location", "unknown", f"{place}: no locations in profile")
    if any(region in facts.places for region in regions):
        return Criterion("location", "meets", place)
    return Criterion("location", "misses", f"{place}, not {'/'.join(facts.places)}")


_REGION_CURRENCY = {"EU": "EUR", "UK": "GBP", "US": "USD", "CH": "CHF"}


def _convert(amount: float, source: str, target: str, rates: dict[str, float]) -> float | None:
    if source == target:
        return amount
    if source not in rates or target not in rates:
        return None
    return amount * rates[source] / rates[target]


def _comp(facts: ProfileFacts, triage: TriageResult, regions: tuple[str, ...],
          rates: dict[str, float]) -> Criterion:
    if not triage.compensation:
        return Criterion("comp", "unknown", "comp not stated")
    money = parse_money(triage.compensation)
    if money is None:
        return Criterion("comp", "unknown", "comp: no yearly figure")
    if money.currency is None:
        # "RAL 60-75k" for a job in Milan is in euros: the job's region says which currency, when it is known.
        assumed = next((_REGION_CURRENCY[r] for r in regions if r in _REGION_CURRENCY), None)
        if assumed is None:
            return Criterion("comp", "unknown", f"comp {money.show()}: currency not stated")
        money = Money(money.low, money.top, assumed)
        verdict = _comp(facts, triage.model_copy(update={"compensation": f"{assumed} {money.low:.0f}-{money.top:.0f}"}),
                        regions, rates)
        return Criterion("comp", verdict.verdict, f"{verdict.evidence} ({assumed} assumed from the place)")
    if facts.floors is None:
        return Criterion("comp", "unknown", f"comp {money.show()}: no floor in profile")
    floors = [f for f in facts.floors if f.region is not None and f.region in regions]
    if not floors:
        floors = [f for f in facts.floors if f.region is None] or list(facts.floors)
    results: list[tuple[bool, str]] = []
    for floor in floors:
        top = _convert(money.top, money.currency, floor.currency, rates)
        if top is None:
            return Criterion("comp", "unknown", f"comp {money.show()}: no rate for {money.currency}/{floor.currency}")
        shown = money.show()
        if money.currency != floor.currency:
            shown += f" (≈{money_text(top, floor.currency)})"
        meets = top >= floor.amount
        results.append((meets, f"comp {shown} {'≥' if meets else '<'} {floor.show()}"))
    if all(meets for meets, _ in results):
        return Criterion("comp", "meets", results[0][1])
    if not any(meets for meets, _ in results):
        return Criterion("comp", "misses", results[0][1])
    return Criterion("comp", "unknown", f"comp {money.show()}: depends on region")


def _equity(facts: ProfileFacts, triage: TriageResult) -> Criterion:
    equity = triage.equity
    if equity is None and triage.compensation and re.search(
            r"\bequity\b|\bstock\b|\bRSUs?\b|\boptions\b|\bESOP\b|\bVSOP\b", triage.compensation, re.IGNORECASE):
        equity = True
    if equity is None:
        return Criterion("equity", "unknown", "equity not stated")
    if facts.wants_equity is None:
        return Criterion("equity", "unknown", "equity" if equity else "no equity")
    if equity or not facts.wants_equity:
        return Criterion("equity", "meets", "equity" if equity else "no equity")
    return Criterion("equity", "misses", "no equity")


def _domain(facts: ProfileFacts, triage: TriageResult) -> Criterion:
    if not triage.industry:
        return Criterion("domain", "unknown", "industry not stated")
    industry = triage.industry[:MAX_TEXT]
    if facts.excluded is None:
        return Criterion("domain", "unknown", f"{industry}: no exclusions in profile")
    words, folded = _fold_words(industry), _fold(industry)
    for term in facts.excluded:
        key = _fold(term)
        if not key:
            continue
        synonyms = _DOMAIN_SYNONYMS.get(key, (key,))
        if any((f" {s} " in words) or (len(s) >= 5 and _fold(s) in folded) for s in synonyms):
            return Criterion("domain", "misses", f"{industry} (not interested in {term})")
    return Criterion("domain", "meets", industry)
