"""recruiter-responder: recruiter mail in, drafted replies and one-tap decisions out."""

__version__ = "0.1.0"
