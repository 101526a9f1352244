"""Fit against the owner profile (issue 16): the profile's facts, money, levels, places, and the verdicts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recruiter.model import TriageResult
from recruiter.reply.draft import load_profile
from recruiter.triage.fit import (
    FitCheck,
    Floor,
    Money,
    ProfileFacts,
    assess,
    level_of,
    load_rates,
    parse_levels,
    parse_money,
    parse_profile,
    regions_of,
)

RATES = {"EUR": 1.0, "GBP": 1.2, "USD": 0.9, "CHF": 1.0}
EXAMPLE = parse_profile(load_profile(None))


def triage(**fields: object) -> TriageResult:
    return TriageResult.model_validate({"is_recruiter": True, "confidence": 0.9, **fields})


# --- the profile ---------------------------------------------------------------------------------------


def test_the_example_profile_reads_into_typed_facts() -> None:
    assert EXAMPLE == ProfileFacts(
        levels=("Staff", "Principal", "Head"),
        floors=(Floor(150_000, "GBP", "London"), Floor(170_000, "EUR", "EU")),
        wants_equity=True,
        places=("London", "EU"),
        remote_ok=True,
        excluded=("crypto", "web3", "ad-tech", "gambling"),
    )


def test_only_the_facts_section_is_read() -> None:
    profile = "# Me\n\nLevel: Junior\n\n## Facts\n\n- Level: Staff\n\n## Tone\n\n- Level: Senior\n"
    assert parse_profile(profile).levels == ("Staff",)


def test_a_profile_without_facts_or_with_unreadable_lines_leaves_criteria_unknown() -> None:
    facts = parse_profile("## Facts\n- Level: whatever suits\n- Compensation floor: a lot\n"
                          "- Locations: somewhere nice\n")
    assert facts == ProfileFacts()
    fit = assess(facts, triage(role="Staff Engineer", location="Berlin", compensation="€200k", industry="fintech"),
                 RATES)
    assert [c.verdict for c in fit.criteria] == ["unknown"] * 5
    assert not fit.decline_first


def test_floors_in_two_currencies_each_apply_to_their_region() -> None:
    facts = parse_profile("## Facts\n- Compensation floor: CHF 200k in Zurich; $250k in the US, €150k in the EU\n")
    assert facts.floors == (Floor(200_000, "CHF", "Zurich"), Floor(250_000, "USD", "US"),
                            Floor(150_000, "EUR", "EU"))
    us = assess(facts, triage(location="New York", compensation="$200k-$240k"), RATES).criteria[2]
    assert (us.verdict, us.evidence) == ("misses", "comp $240k < $250k US floor")
    eu = assess(facts, triage(location="Munich", compensation="$200k"), RATES).criteria[2]
    assert (eu.verdict, eu.evidence) == ("meets", "comp $200k (≈€180k) ≥ €150k EU floor")


def test_parsing_any_profile_never_raises() -> None:
    for profile in ("", "## Facts", "## Facts\n- Level:", "## Facts\n-: x\n", "## Facts\n- Compensation floor: £",
                    "## Facts\n- Compensation floor: 9" * 500, "\x00" * 50, "## Facts\n- Locations: or, or ;;"):
        parse_profile(profile)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_parse_profile_never_raises_on_any_text(text: str) -> None:
    parse_profile("## Facts\n- Level: " + text + "\n- Compensation floor: " + text + "\n- Locations: " + text +
                  "\n- Not interested in: " + text)


# --- money ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "money"), [
    ("€95k", Money(95_000, 95_000, "EUR")),
    ("95,000 EUR", Money(95_000, 95_000, "EUR")),
    ("$180k-$220k", Money(180_000, 220_000, "USD")),
    ("£120k–£140k + equity", Money(120_000, 140_000, "GBP")),
    ("€120.000 – €140.000", Money(120_000, 140_000, "EUR")),
    ("85-95k€", Money(85_000, 95_000, "EUR")),
    ("150-180k", Money(150_000, 180_000, None)),
    ("up to 200k CHF", Money(200_000, 200_000, "CHF")),
    ("£160,000 base + 10% bonus", Money(160_000, 160_000, "GBP")),
    ("120 000 € brut", Money(120_000, 120_000, "EUR")),
    ("€95.5k", Money(95_500, 95_500, "EUR")),
])
def test_money_is_read_with_its_currency_and_top(text: str, money: Money) -> None:
    assert parse_money(text) == money


@pytest.mark.parametrize("text", ["€800/day", "£650 per day", "competitive", "DOE", "", "10%", "3 days a week"])
def test_text_without_a_yearly_figure_is_no_money(text: str) -> None:
    assert parse_money(text) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789,. k€$£-–toEURGBP+/\u00a0m"), max_size=3000)
       | st.text(max_size=3000))
def test_money_parser_never_raises(text: str) -> None:
    money = parse_money(text)
    assert money is None or money.low <= money.top


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_level_and_place_parsers_never_raise(text: str) -> None:
    parse_levels(text)
    level_of(text)
    regions_of(text)


@pytest.mark.parametrize("unit", ["1,", "1.", "1 ", "9" * 7 + "k", "€1-", "1,000,", "k", "1.0k-", "£", "remote "])
def test_parsers_are_linear_in_their_input(unit: str) -> None:
    # A 1,000-character input and a 100,000-character one: the parsers read at most MAX_TEXT characters
    # and scan it once, so neither takes long.
    started = time.perf_counter()
    for text in (unit * (1000 // len(unit)), unit * (100_000 // len(unit))):
        parse_money(text)
        parse_levels(text)
        regions_of(text)
        parse_profile("## Facts\n- Compensation floor: " + text + "\n- Locations: " + text)
    assert time.perf_counter() - started < 1.0


# --- levels and places ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "level"), [
    ("Staff Site Reliability Engineer", "Staff"), ("Sr. Backend Engineer", "Senior"), ("Head of Platform", "Head"),
    ("Senior Lead Engineer", "Senior"), ("Tech Lead", "Lead"), ("Backend Engineer", None), ("", None),
    ("VP Engineering", "VP"), ("Engineering Manager", "Manager"), ("Engenheiro de Software Sénior", "Senior"),
    ("Senior Staff Software Engineer", "Staff"),
])
def test_the_level_of_a_role(role: str, level: str | None) -> None:
    assert level_of(role) == level


def test_places_know_their_region() -> None:
    assert regions_of("Berlin, Germany (hybrid)") == ("Berlin", "EU", "Germany")
    assert regions_of("London") == ("London", "UK")
    assert regions_of("Zürich") == ("Zürich", "CH")
    assert regions_of("Atlantis") == ()


# --- the verdicts --------------------------------------------------------------------------------------


def test_the_issue_example() -> None:
    fit = assess(EXAMPLE, triage(role="Staff Platform Engineer", location="Berlin", compensation="€95k"), RATES)
    assert fit.line() == ("Fit: ✅ level (Staff) · ✅ Berlin (EU) · ❌ comp €95k < €170k EU floor · "
                          "❓ equity not stated · ❓ industry not stated")
    assert fit.glyphs() == "✅level ✅location ❌comp ❓equity ❓domain"
    assert fit.decline_first


def test_a_good_match_meets_everything() -> None:
    fit = assess(EXAMPLE, triage(role="Principal Engineer", location="London", remote="hybrid",
                                 compensation="£140k–£165k + equity", industry="fintech"), RATES)
    assert [c.verdict for c in fit.criteria] == ["meets"] * 5
    assert fit.criteria[2].evidence == "comp £165k ≥ £150k London floor"
    assert not fit.decline_first


def test_a_range_compares_by_its_top_across_currencies() -> None:
    # $180k-$220k in London: $220k * 0.9 / 1.2 = £165k >= £150k.
    comp = assess(EXAMPLE, triage(location="London", compensation="$180k-$220k"), RATES).criteria[2]
    assert (comp.verdict, comp.evidence) == ("meets", "comp $220k (≈£165k) ≥ £150k London floor")


def test_an_unknown_currency_or_a_missing_rate_is_unknown() -> None:
    assert assess(EXAMPLE, triage(location="Atlantis", compensation="150-180k"), RATES).verdict("comp") == "unknown"
    assert assess(EXAMPLE, triage(compensation="150-180k"), RATES).verdict("comp") == "unknown"
    comp = assess(EXAMPLE, triage(location="Berlin", compensation="PLN 900k"), RATES).criteria[2]
    assert comp.verdict == "unknown" and "no rate for PLN" in comp.evidence


def test_a_figure_without_a_currency_takes_the_currency_of_the_place() -> None:
    comp = assess(EXAMPLE, triage(location="Milano", compensation="RAL 60-75k"), RATES).criteria[2]
    assert (comp.verdict, comp.evidence) == ("misses", "comp €75k < €170k EU floor (EUR assumed from the place)")
    comp = assess(EXAMPLE, triage(location="London", compensation="up to 200k"), RATES).criteria[2]
    assert comp.verdict == "meets" and "GBP assumed" in comp.evidence


def test_a_place_without_a_floor_compares_with_every_floor() -> None:
    low = assess(EXAMPLE, triage(location="Manchester", compensation="£90k"), RATES)
    assert low.verdict("comp") == "misses"
    high = assess(EXAMPLE, triage(remote="remote", compensation="€300k"), RATES)
    assert high.verdict("comp") == "meets"
    both = assess(EXAMPLE, triage(remote="remote", compensation="£155k"), RATES)  # £155k ≈ €186k
    assert both.verdict("comp") == "meets"
    neither = assess(EXAMPLE, triage(remote="remote", compensation="€160k"), RATES)  # €160k ≈ £133k
    assert neither.verdict("comp") == "misses"
    one = assess(EXAMPLE, triage(remote="remote", compensation="€175k"), RATES).criteria[2]  # ≈ £146k
    assert (one.verdict, one.evidence) == ("unknown", "comp €175k: depends on region")
    depends = parse_profile("## Facts\n- Compensation floor: €100k in Berlin, €200k in Paris\n")
    assert assess(depends, triage(compensation="€150k"), RATES).verdict("comp") == "unknown"


def test_level_and_location_misses() -> None:
    fit = assess(EXAMPLE, triage(role="Senior Backend Engineer", location="New York", remote="onsite"), RATES)
    assert fit.criteria[0].evidence == "level Senior, not Staff/Principal/Head"
    assert fit.verdict("location") == "misses"
    assert fit.decline_first


def test_location_alone_does_not_put_decline_first() -> None:
    fit = assess(EXAMPLE, triage(role="Staff Engineer", location="Tokyo"), RATES)
    assert fit.verdict("location") == "misses" and not fit.decline_first


def test_remote_meets_when_the_profile_takes_remote() -> None:
    assert assess(EXAMPLE, triage(remote="remote", location="Remote"), RATES).criteria[1].evidence == "remote"
    onsite_only = parse_profile("## Facts\n- Locations: Berlin; not remote\n")
    assert assess(onsite_only, triage(remote="remote"), RATES).verdict("location") == "misses"


@pytest.mark.parametrize("industry", ["crypto exchange", "Web3 infrastructure", "adtech", "sports betting",
                                      "blockchain", "Ad-Tech platform", "iGaming"])
def test_an_excluded_domain_misses(industry: str) -> None:
    fit = assess(EXAMPLE, triage(industry=industry), RATES)
    assert fit.verdict("domain") == "misses" and fit.decline_first


@pytest.mark.parametrize("industry", ["fintech", "healthtech", "developer tools", "e-commerce", "advert-free media"])
def test_other_domains_meet(industry: str) -> None:
    assert assess(EXAMPLE, triage(industry=industry), RATES).verdict("domain") == "meets"


def test_equity() -> None:
    assert assess(EXAMPLE, triage(equity=True), RATES).verdict("equity") == "meets"
    assert assess(EXAMPLE, triage(equity=False), RATES).verdict("equity") == "misses"
    assert assess(EXAMPLE, triage(compensation="£150k + RSUs"), RATES).verdict("equity") == "meets"
    assert assess(EXAMPLE, triage(), RATES).criteria[3].evidence == "equity not stated"
    # An equity miss alone does not put Decline first.
    assert not assess(EXAMPLE, triage(equity=False), RATES).decline_first


# --- rates ---------------------------------------------------------------------------------------------


def test_rates_come_from_the_owner_file(tmp_path: Path) -> None:
    shipped = load_rates(None)
    assert shipped["EUR"] == 1.0 and {"GBP", "USD", "CHF"} <= set(shipped)
    mine = tmp_path / "rates.toml"
    mine.write_text('[eur_per_unit]\nEUR = 1\ngbp = 2.0\nUSD = "lots"\nCHF = -1\n', encoding="utf-8")
    assert load_rates(mine) == {"EUR": 1.0, "GBP": 2.0}
    check = FitCheck.from_profile(load_profile(None), load_rates(mine))
    # €170k EU floor; £90k at 2 €/£ is €180k.
    assert check.assess(triage(location="Paris", compensation="£90k")).verdict("comp") == "meets"
    mine.write_text("not toml [", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_rates(mine)


def test_a_broken_rates_file_is_a_configuration_error(tmp_path: Path) -> None:
    from recruiter.app import _rates
    from recruiter.errors import ConfigError
    from recruiter.settings import settings_from

    broken = tmp_path / "rates.toml"
    broken.write_text("[eur_per_unit\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="FX_RATES_FILE"):
        _rates(settings_from({"FX_RATES_FILE": str(broken)}))
    assert _rates(settings_from({}))["EUR"] == 1.0


_FIELD = st.one_of(st.none(), st.text(max_size=100))


@settings(max_examples=200, deadline=None)
@given(role=_FIELD, location=_FIELD, compensation=_FIELD, level=st.one_of(st.none(), st.text(max_size=60)),
       industry=_FIELD, equity=st.one_of(st.none(), st.booleans()),
       remote=st.sampled_from(["remote", "hybrid", "onsite", "unknown"]), profile=st.text(max_size=500))
def test_assess_never_raises_on_any_verdict_or_profile(role: str | None, location: str | None,
                                                       compensation: str | None, level: str | None,
                                                       industry: str | None, equity: bool | None, remote: str,
                                                       profile: str) -> None:
    verdict = TriageResult(is_recruiter=True, confidence=0.5, role=role, location=location, remote=remote,  # type: ignore[arg-type]
                           compensation=compensation, level=level, industry=industry, equity=equity)
    for facts in (EXAMPLE, parse_profile("## Facts\n- Level: " + profile + "\n- Compensation floor: " + profile)):
        fit = assess(facts, verdict, RATES)
        assert [c.name for c in fit.criteria] == ["level", "location", "comp", "equity", "domain"]
        assert fit.line().startswith("Fit: ")
