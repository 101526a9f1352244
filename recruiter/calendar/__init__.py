"""The owner's calendar: tentative events for proposed interview times (`caldav.py` for a CalDAV
server, the `.ics` directory sink; `ics.py` builds the events) and what is already there (`conflicts.py`)."""
