"""Word lists for the rules tier: recruiting phrases per language, recruiter senders, places.

Data only, so that what the rules tier knows can be read (and extended) in one place. Phrases are
regular expressions matched case-insensitively; each carries a weight (3 = says "recruiting" on its
own, 2 = typical, 1 = supporting).
"""

from __future__ import annotations

# (language, weight, pattern)
RECRUITING_PHRASES: tuple[tuple[str, int, str], ...] = (
    ("en", 3, r"came across your (?:profile|background|github|linkedin|work)"),
    ("en", 3, r"talent (?:acquisition|partner|sourcer|team)"),
    ("en", 3, r"\b(?:technical |tech |senior |executive )?recruit(?:er|ers|ing|ment)\b"),
    ("en", 3, r"head ?hunt(?:er|ing)"),
    ("en", 3, r"hiring manager|job description|executive search|your (?:application|candidacy)"),
    ("en", 3, r"(?:are|is|we're|currently) (?:actively )?hiring\b|looking to hire|hiring for"),
    ("en", 3, r"(?:open|exciting|new|interesting|senior|permanent) (?:role|position|opportunit(?:y|ies))"),
    ("en", 3, r"would you be (?:open|interested)|(?:open|interested) (?:in|to) (?:exploring|hearing more|"
              r"learning more|discussing|a (?:quick )?(?:chat|call|conversation))"),
    ("en", 3, r"\b(?:role|position|opportunity|vacancy|opening) (?:at|with)\b"),
    ("en", 2, r"\bopportunit(?:y|ies)\b|\bvacanc(?:y|ies)\b"),
    ("en", 2, r"\b(?:the|this|a|our|that)(?: [\w-]+){0,3} (?:role|position)\b"),
    ("en", 2, r"if you(?:'re| are| would be| might be) (?:interested|open)|intro(?:ductory)? call"),
    ("en", 2, r"\binterview(?:s|ing)?\b|\bcandidates?\b"),
    ("en", 2, r"\b(?:base )?salary\b|\bcompensation\b|total comp|\bOTE\b"),
    ("en", 2, r"\b(?:my|our) client\b|your (?:profile|background|experience)"),
    ("en", 1, r"\bequity\b|\bstock options\b|\bcareer\b|\bnext steps?\b|report(?:s|ing)? to (?:the|our|a)\b"),
    ("de", 3, r"recruiter(?:in)?\b|personalberat(?:er|erin|ung)|headhunter(?:in)?"),
    ("de", 3, r"(?:ihr|dein|ihrem|deinem) (?:profil|lebenslauf|werdegang)"),
    ("de", 3, r"(?:spannende|interessante|neue|vakante|offene) (?:position|stelle|herausforderung|vakanz|rolle)"),
    ("de", 3, r"vorstellungsgespräch|bewerbung|stellenangebot|jobangebot|wechselbereit"),
    ("de", 2, r"\bgehalt\b|jahresgehalt|vergütung|\bkarriere"),
    ("de", 2, r"(?:mein|unser|meinen|unseren) (?:kunde|kunden|mandant(?:en)?)\b|\(m/w/d\)|\(w/m/d\)|\(m/f/d\)"),
    ("fr", 3, r"recrut(?:eur|euse|ement|ons)|chasseu(?:r|se) de têtes|cabinet de recrutement"),
    ("fr", 3, r"(?:votre|ton) (?:profil|parcours|candidature)|offre d'emploi|\bentretien\b"),
    ("fr", 3, r"(?:opportunité|poste) (?:de|d'|en|chez)|nouvelle opportunité"),
    ("fr", 2, r"\bposte\b|rémunération|\bsalaire\b|\bcdi\b|(?:mon|notre) client\b|\bcandidat"),
    ("nl", 3, r"\bvacature|sollicit|werving|(?:je|jouw|uw) (?:profiel|achtergrond|cv)\b|nieuwe uitdaging"),
    ("nl", 2, r"\bfunctie\b|\bsalaris|(?:mijn|onze) (?:klant|opdrachtgever)\b"),
    ("es", 3, r"reclut(?:ador|adora|amiento)|oferta de (?:empleo|trabajo)|\bvacante\b|proceso de selección"),
    ("es", 3, r"(?:tu|su) (?:perfil|experiencia|candidatura)\b|\bentrevista\b"),
    ("es", 2, r"\bpuesto\b|oportunidad|\bsalario\b|retribución|(?:mi|nuestro) cliente\b"),
    ("it", 3, r"(?:il tuo|il suo) profilo|offerta di lavoro|(?:ricerca e )?selezione del personale"),
    ("it", 3, r"\bcolloquio\b|posizione aperta|\bselezioniamo\b|stiamo cercando"),
    ("it", 2, r"opportunità|\bposizione\b|retribuzione|\bRAL\b|(?:nostro|mio) cliente\b"),
    ("pt", 3, r"(?:seu|teu) perfil|\bvaga\b|recrutador(?:a)?|recrutamento|processo seletivo|proposta de emprego"),
    ("pt", 2, r"oportunidade|\bcargo\b|salário|remuneração|(?:nosso|meu) cliente\b"),
    ("pl", 3, r"rekrut(?:er|erka|acj)|oferta pracy|(?:twój|pana|pani) profil|propozycj\w+ (?:współpracy|pracy)"),
    ("pl", 3, r"rozmow\w+ rekrutacyjn|\bstanowisk\w*"),
    ("pl", 2, r"wynagrodzeni|możliwoś\w+ (?:współpracy|rozwoju)|(?:mój|nasz) klient\b"),
)

# Notification, marketing and transactional phrasing: points against.
NOT_RECRUITING_PHRASES: tuple[str, ...] = (
    r"\bunsubscribe\b|abmelden|se désabonner|désinscri|darse de baja|afmelden|annulla l'iscrizione|wypisz",
    r"view (?:this (?:e-?mail|message) )?in (?:your |a )?browser|manage (?:your )?(?:e-?mail )?"
    r"(?:preferences|subscriptions|notifications|alerts)",
    r"you(?:'re| are) receiving this|this is an automated|do not reply to this",
    r"\breceipt\b|order (?:number|confirmation|#)|\binvoice\b|\bpayment (?:received|confirmation)",
    r"password reset|verification code|security alert|sign-?in attempt|new (?:ssh )?key was added",
    r"out of (?:the )?office|automatic reply|abwesenheitsnotiz|absence du bureau|fuera de la oficina",
    r"job alert|jobs? (?:matching|for you|you may be interested)|new jobs\b|recommended jobs",
    r"pull request|commented on|merged (?:#|into)|\bnewsletter\b|\bwebinar\b|this week in",
)

REJECTION_PHRASES = (
    r"not (?:to )?(?:move|moving) forward|decided to (?:proceed|go ahead|move forward|continue) with (?:other|another)",
    r"will not be (?:proceeding|progressing|moving forward)|regret to inform|position has (?:now )?been filled",
    r"not (?:be )?progress(?:ing)? your application|other candidates whose",
    r"nicht (?:weiter )?berücksichtigen|absage|für (?:einen )?anderen kandidaten",
    r"ne pas donner suite|pas été retenue?|ne sommes pas en mesure de poursuivre",
    r"no seguir adelante|no continuar con tu candidatura|non proseguire|não (?:seguir|avançar)",
    r"niet (?:verder )?(?:gaan|door) met|afwijzing|nie będziemy kontynuować",
)
REJECTION_SOFT = r"\b(?:unfortunately|leider|malheureusement|helaas|lamentablemente|desafortunadamente|" \
                 r"purtroppo|infelizmente|niestety)\b"
APPLICATION_WORDS = r"application|candidacy|bewerbung|candidature|sollicitatie|candidatura|aplikacj|process"

OFFER_PHRASES = (
    r"pleased to (?:offer|extend)|offer letter|formal offer|offer of employment|verbal offer",
    r"(?:would like|delighted|happy) to offer you|extend (?:you )?an offer",
    r"vertragsangebot|arbeitsvertrag|proposition d'embauche|promesse d'embauche",
    r"carta de oferta|lettera di offerta|carta(?:-| )oferta|oferta zatrudnienia",
)

SCHEDULING_PHRASES = (
    r"calendar invite|interview (?:invitation|slot)|time ?slots?|book a (?:time|slot)|calendly\.com",
    r"schedule (?:a|an|the|your) (?:call|interview|chat|meeting)|your availability|availability (?:for|this|next)",
    r"einladung zum (?:gespräch|interview)|terminvorschl|créneau|disponibilités|disponibilidad|beschikbaarheid",
)

FOLLOW_UP_PHRASES = (
    r"following up|follow(?:-| )up on|circling back|checking in|bump(?:ing)? this|did you (?:get|have) a chance",
    r"any thoughts on|haven't heard back|just wanted to (?:check|see)",
    r"my (?:previous|last|earlier) (?:e-?mail|note|message)",
    r"nachfassen|nachhaken|ich wollte (?:noch ?mal|nachfragen)|meine (?:letzte|vorherige) (?:e-?mail|nachricht)",
    r"je me permets de (?:revenir|relancer)|relance|je reviens vers (?:vous|toi)",
    r"hago seguimiento|seguimiento|ik wilde (?:nog )?even|volevo ricontattarti|retomando|przypominam",
)

ATS_NAMES = ("greenhouse", "lever", "workable", "ashby", "smartrecruiters", "teamtailor", "recruitee",
             "personio", "jobvite", "icims", "bamboohr", "breezy", "pinpoint", "gem", "beamery", "homerun")

AGENCY_LABELS = frozenset({
    "hays", "michaelpage", "pagepersonnel", "pagegroup", "robertwalters", "roberthalf", "randstad",
    "adecco", "harveynash", "kornferry", "spencerstuart", "heidrick", "egonzehnder", "russellreynolds",
    "computerfutures", "sthree", "frankgroup", "akkodis", "experis", "manpower", "manpowergroup", "kforce",
    "teksystems", "hired", "huntress", "oliverbernard", "lawrenceharvey", "modis", "hudson", "progressive",
})
RECRUITING_DOMAIN_TOKENS = ("recruit", "talent", "staffing", "headhunt", "personal", "search", "careers",
                            "hiring", "executive", "werving", "recrutement", "reclut", "seleccion", "selezione")
RECRUITING_LOCAL_TOKENS = ("recruit", "talent", "careers", "jobs", "hiring", "hr", "people", "sourcing",
                           "headhunt", "karriere", "bewerbung", "recrutement", "empleo", "carriere")

FREEMAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com",
    "yahoo.com", "yahoo.co.uk", "yahoo.fr", "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com",
    "gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de", "orange.fr", "free.fr", "laposte.net",
    "wanadoo.fr", "libero.it", "aol.com", "mail.com", "fastmail.com", "hey.com", "wp.pl", "o2.pl",
    "onet.pl", "interia.pl", "ziggo.nl", "kpnmail.nl", "yandex.com", "zoho.com", "tutanota.com",
})

CITIES = (
    "London", "Manchester", "Edinburgh", "Glasgow", "Cambridge", "Oxford", "Bristol", "Leeds", "Birmingham",
    "Belfast", "Dublin", "Cork", "Berlin", "Munich", "München", "Hamburg", "Frankfurt", "Cologne", "Köln",
    "Stuttgart", "Düsseldorf", "Leipzig", "Dresden", "Paris", "Lyon", "Toulouse", "Bordeaux", "Lille",
    "Nantes", "Marseille", "Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "The Hague", "Den Haag",
    "Brussels", "Bruxelles", "Antwerp", "Ghent", "Luxembourg", "Zurich", "Zürich", "Geneva", "Genève",
    "Basel", "Lausanne", "Vienna", "Wien", "Madrid", "Barcelona", "Valencia", "Seville", "Málaga", "Malaga",
    "Lisbon", "Lisboa", "Porto", "Milan", "Milano", "Rome", "Roma", "Turin", "Torino", "Bologna",
    "Warsaw", "Warszawa", "Kraków", "Krakow", "Wrocław", "Wroclaw", "Gdańsk", "Gdansk", "Poznań", "Prague",
    "Praha", "Brno", "Budapest", "Bucharest", "Sofia", "Athens", "Tallinn", "Riga", "Vilnius", "Helsinki",
    "Stockholm", "Gothenburg", "Copenhagen", "Oslo", "Reykjavik", "Tel Aviv", "Dubai", "Singapore",
    "Tokyo", "Sydney", "Melbourne", "Toronto", "Vancouver", "Montreal", "New York", "San Francisco",
    "Seattle", "Austin", "Boston", "Chicago", "Los Angeles", "Denver", "Atlanta", "Miami",
)

MONTHS = {
    1: ("january", "jan", "januar", "jänner", "janvier", "janv", "enero", "januari", "gennaio", "janeiro"),
    2: ("february", "feb", "februar", "février", "févr", "febrero", "februari", "febbraio", "fevereiro"),
    3: ("march", "mar", "märz", "maerz", "mars", "marzo", "maart", "março"),
    4: ("april", "apr", "avril", "abril", "aprile"),
    5: ("may", "mai", "mayo", "mei", "maggio", "maio"),
    6: ("june", "jun", "juni", "juin", "junio", "giugno", "junho"),
    7: ("july", "jul", "juli", "juillet", "julio", "luglio", "julho"),
    8: ("august", "aug", "août", "agosto", "augustus"),
    9: ("september", "sep", "sept", "septembre", "septiembre", "settembre", "setembro"),
    10: ("october", "oct", "oktober", "octobre", "octubre", "ottobre", "outubro", "okt"),
    11: ("november", "nov", "novembre", "noviembre", "novembro"),
    12: ("december", "dec", "dezember", "décembre", "diciembre", "dicembre", "dezembro", "dez", "déc"),
}
WEEKDAYS = {
    0: ("monday", "mon", "montag", "lundi", "lunes", "maandag", "lunedì", "segunda-feira"),
    1: ("tuesday", "tue", "tues", "dienstag", "mardi", "martes", "dinsdag", "martedì", "terça-feira"),
    2: ("wednesday", "wed", "mittwoch", "mercredi", "miércoles", "woensdag", "mercoledì", "quarta-feira"),
    3: ("thursday", "thu", "thur", "thurs", "donnerstag", "jeudi", "jueves", "donderdag", "giovedì",
        "quinta-feira"),
    4: ("friday", "fri", "freitag", "vendredi", "viernes", "vrijdag", "venerdì", "sexta-feira"),
    5: ("saturday", "sat", "samstag", "samedi", "sábado", "zaterdag", "sabato"),
    6: ("sunday", "sun", "sonntag", "dimanche", "domingo", "zondag", "domenica"),
}
# Zone names that mean one offset (hours); ambiguous ones (IST, CST in Asia, …) are left out on purpose.
FIXED_ZONES = {
    "utc": 0.0, "gmt": 0.0, "z": 0.0, "wet": 0.0, "bst": 1.0, "west": 1.0, "cet": 1.0, "mez": 1.0,
    "cest": 2.0, "mesz": 2.0, "eet": 2.0, "eest": 3.0, "msk": 3.0, "est": -5.0, "edt": -4.0,
    "cdt": -5.0, "mst": -7.0, "mdt": -6.0, "pst": -8.0, "pdt": -7.0,
}
CITY_ZONES = {
    "london": "Europe/London", "uk": "Europe/London", "british": "Europe/London", "berlin": "Europe/Berlin",
    "german": "Europe/Berlin", "paris": "Europe/Paris", "french": "Europe/Paris",
    "amsterdam": "Europe/Amsterdam", "dutch": "Europe/Amsterdam", "madrid": "Europe/Madrid",
    "lisbon": "Europe/Lisbon", "dublin": "Europe/Dublin", "zurich": "Europe/Zurich", "warsaw": "Europe/Warsaw",
    "new york": "America/New_York", "eastern": "America/New_York", "pacific": "America/Los_Angeles",
    "central european": "Europe/Berlin",
}
