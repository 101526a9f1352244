"""What reaches the owner on Telegram: `telegram.py` (the Bot API), `card.py` (one mail's card),
`digest.py` (backlog digests), `links.py` (signed one-tap links), `retell.py` (what may not have arrived)."""
