"""An owner profile with floors in two currencies, its rates, and its fit check (issue 16's tests)."""

from __future__ import annotations

from recruiter.triage.fit import FitCheck

PROFILE = """# Owner profile

Name: Alex Example

## Facts

- Level: Staff or Principal engineer
- Compensation floor: £150k base in London, €170k base elsewhere in the EU, plus equity
- Locations: London, anywhere in the EU, or fully remote
- Not interested in: crypto/web3, ad-tech, gambling

## Tone

- Brief.
"""
RATES = "[eur_per_unit]\nEUR = 1.0\nGBP = 1.2\nUSD = 0.9\n"
CHECK = FitCheck.from_profile(PROFILE, {"EUR": 1.0, "GBP": 1.2, "USD": 0.9})
