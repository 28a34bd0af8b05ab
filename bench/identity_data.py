"""A generated French-flavoured network for bench/identity.py: people who shop in one or
several of ``units`` stores, each record typed by a store with the variations stores make
(typos, accents lost or upper case, hyphens, particles, swapped first/last names, a maiden
name, a changed or missing phone, a changed, missing or placeholder e-mail, a birthday
missing or one field off, a move), plus network noise: the shop's own phone typed on
customers' records, placeholder e-mails, NUL bytes. Returns (records, truth) where truth
maps each record to the person that generated it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pandas as pd

FIRST_F = [
    "Marie",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Catherine",
    "Françoise",
    "Christine",
    "Monique",
    "Valérie",
    "Sandrine",
    "Véronique",
    "Sophie",
    "Céline",
    "Chantal",
    "Stéphanie",
    "Nicole",
    "Patricia",
    "Aurélie",
    "Julie",
    "Émilie",
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Inès",
    "Zoé",
    "Anaïs",
    "Hélène",
    "Agnès",
    "Béatrice",
    "Geneviève",
    "Mélanie",
    "Élodie",
    "Noémie",
    "Léna",
    "Maëlle",
    "Clémence",
    "Solène",
    "Gaëlle",
    "Jacqueline",
    "Anne-Sophie",
    "Marie-Claire",
    "Marie-Thérèse",
    "Josiane",
    "Laetitia",
    "Audrey",
    "Pauline",
    "Margaux",
    "Océane",
    "Lucie",
    "Juliette",
    "Louise",
    "Alice",
    "Rose",
    "Ambre",
    "Jeanne",
    "Thérèse",
    "Odile",
    "Brigitte",
    "Martine",
    "Danielle",
    "Colette",
    "Yvette",
    "Ginette",
    "Simone",
    "Lucienne",
]
FIRST_M = [
    "Jean",
    "Pierre",
    "Michel",
    "Philippe",
    "Alain",
    "Nicolas",
    "Christophe",
    "Patrick",
    "Daniel",
    "Laurent",
    "Frédéric",
    "Éric",
    "Stéphane",
    "David",
    "Julien",
    "Sébastien",
    "Thomas",
    "Antoine",
    "Maxime",
    "Hugo",
    "Lucas",
    "Théo",
    "Léo",
    "Mathéo",
    "Raphaël",
    "Gabriel",
    "Louis",
    "Arthur",
    "Jules",
    "Noé",
    "Adam",
    "Benoît",
    "François",
    "Jérôme",
    "Grégory",
    "Cédric",
    "Jean-Pierre",
    "Jean-Luc",
    "Jean-François",
    "Jean-Marc",
    "Pierre-Yves",
    "Hervé",
    "Thierry",
    "Olivier",
    "Bruno",
    "Didier",
    "Gérard",
    "René",
    "Marcel",
    "André",
    "Bernard",
    "Jacques",
    "Gilles",
    "Yves",
    "Serge",
    "Joël",
    "Loïc",
    "Gaël",
    "Yannick",
    "Mickaël",
    "Rémi",
    "Aurélien",
    "Baptiste",
    "Clément",
    "Quentin",
    "Romain",
    "Valentin",
    "Victor",
    "Émile",
]
LAST = [
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefèvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefebvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Garcia",
    "Perrin",
    "Robin",
    "Clément",
    "Morin",
    "Nicolas",
    "Henry",
    "Roussel",
    "Mathieu",
    "Gautier",
    "Masson",
    "Marchand",
    "Duval",
    "Denis",
    "Dumont",
    "Marie",
    "Lemaire",
    "Noël",
    "Meyer",
    "Dufour",
    "Meunier",
    "Brun",
    "Blanchard",
    "Giraud",
    "Joly",
    "Rivière",
    "Lucas",
    "Brunet",
    "Gaillard",
    "Barbier",
    "Arnaud",
    "Martinez",
    "Gérard",
    "Roche",
    "Renard",
    "Schmitt",
    "Roy",
    "Leroux",
    "Colin",
    "Vidal",
    "Caron",
    "Picard",
    "Roger",
    "Fabre",
    "Aubert",
    "Lemoine",
    "Renaud",
    "Dumas",
    "Lacroix",
    "Olivier",
    "Philippe",
    "Bourgeois",
    "Pierre",
    "Benoît",
    "Rey",
    "Leclerc",
    "Payet",
    "Rolland",
    "Leclercq",
    "Guillaume",
    "Lecomte",
    "Lopez",
    "Jean",
    "Dupuy",
    "Guillot",
    "Hubert",
    "Berger",
    "Carpentier",
    "Sanchez",
    "Dupuis",
    "Moulin",
    "Louis",
    "Deschamps",
    "Huet",
    "Vasseur",
    "Perez",
    "Boucher",
    "Fleury",
    "Royer",
    "Klein",
    "Jacquet",
    "Adam",
    "Paris",
    "Poirier",
    "Marty",
    "Aubry",
    "Guyot",
    "Carré",
    "Charles",
    "Renault",
    "Charpentier",
    "Ménard",
    "Maillard",
    "Baron",
    "Bertin",
    "Bailly",
    "Hervé",
    "Schneider",
    "Fernandez",
    "Le_Gall",
    "Collet",
    "Léger",
    "Bouvier",
    "Julien",
    "Prévost",
    "Millet",
    "Perrot",
    "Daniel",
    "Le_Roux",
    "Cousin",
    "Germain",
    "Breton",
    "Besson",
    "Langlois",
    "Rémy",
    "Le_Goff",
    "Pelletier",
    "Lévêque",
    "Perrier",
    "Leblanc",
    "Barré",
    "Lebrun",
    "Marchal",
    "Weber",
    "Mallet",
    "Hamon",
    "Boulanger",
    "Jacob",
    "Monnier",
    "Michaud",
    "Rodriguez",
    "Guichard",
    "Gillet",
    "Étienne",
    "Grondin",
    "Poulain",
    "Tessier",
    "Chevallier",
    "Collin",
    "Chauvin",
    "Da_Silva",
    "Bouchet",
    "Gay",
    "Lemaître",
    "Benard",
    "Maréchal",
    "Humbert",
    "Reynaud",
    "Antoine",
    "Hoarau",
    "Perret",
    "Barthélemy",
    "Cordier",
    "Pichon",
    "Lejeune",
    "Gilbert",
    "Lamy",
    "Delaunay",
    "Pasquier",
    "Carlier",
    "Laporte",
    "de_La_Fontaine",
    "de_Villiers",
    "Le_Bihan",
    "D'Angelo",
    "D'Arcy",
    "Van_der_Berg",
    "Van_Damme",
    "du_Pont",
    "de_Saint-Exupéry",
    "Le_Floc'h",
    "Lefranc-Dubois",
    "Martin-Dupont",
    "Saint-Martin",
]
SYL = [
    "ba",
    "be",
    "bi",
    "bo",
    "bou",
    "ca",
    "ce",
    "ci",
    "co",
    "cou",
    "da",
    "de",
    "di",
    "do",
    "dou",
    "fa",
    "fe",
    "fi",
    "fo",
    "ga",
    "ge",
    "gi",
    "go",
    "la",
    "le",
    "li",
    "lo",
    "lou",
    "ma",
    "me",
    "mi",
    "mo",
    "mou",
    "na",
    "ne",
    "ni",
    "no",
    "pa",
    "pe",
    "pi",
    "po",
    "ra",
    "re",
    "ri",
    "ro",
    "rou",
    "sa",
    "se",
    "si",
    "so",
    "ta",
    "te",
    "ti",
    "to",
    "va",
    "ve",
    "vi",
    "vo",
    "che",
    "cha",
    "chou",
    "gna",
    "gne",
    "que",
    "qui",
    "ran",
    "ren",
    "rin",
    "ron",
    "san",
    "sen",
    "son",
    "tan",
    "ten",
    "ton",
    "val",
    "vil",
    "mar",
    "mor",
    "ber",
    "bar",
    "bel",
    "bon",
]
SUFFIX = [
    "t",
    "ard",
    "ot",
    "in",
    "eau",
    "aux",
    "et",
    "el",
    "on",
    "ier",
    "and",
    "ais",
    "y",
    "ac",
    "as",
    "eux",
    "ière",
    "oux",
]
CITIES = [
    "Paris",
    "Lyon",
    "Marseille",
    "Toulouse",
    "Nice",
    "Nantes",
    "Strasbourg",
    "Montpellier",
    "Bordeaux",
    "Lille",
    "Rennes",
    "Reims",
    "Toulon",
    "Saint-Étienne",
    "Le_Havre",
    "Grenoble",
    "Dijon",
    "Angers",
    "Nîmes",
    "Villeurbanne",
    "Clermont-Ferrand",
    "Le_Mans",
    "Aix-en-Provence",
    "Brest",
    "Tours",
    "Amiens",
    "Limoges",
    "Annecy",
    "Perpignan",
    "Boulogne-Billancourt",
    "Metz",
    "Besançon",
    "Orléans",
    "Saint-Denis",
    "Argenteuil",
    "Rouen",
    "Mulhouse",
    "Montreuil",
    "Caen",
    "Nancy",
    "Saint-Paul",
    "Tourcoing",
    "Roubaix",
    "Nanterre",
    "Vitry-sur-Seine",
    "Avignon",
    "Créteil",
    "Dunkerque",
    "Poitiers",
    "Asnières-sur-Seine",
    "Versailles",
    "Courbevoie",
    "Colombes",
    "Aubervilliers",
    "Aulnay-sous-Bois",
    "Pau",
    "Rueil-Malmaison",
    "La_Rochelle",
    "Champigny-sur-Marne",
    "Antibes",
    "Saint-Maur-des-Fossés",
    "Calais",
    "Cannes",
    "Béziers",
    "Colmar",
    "Bourges",
    "Drancy",
    "Mérignac",
    "Saint-Nazaire",
    "Ajaccio",
    "Issy-les-Moulineaux",
    "Noisy-le-Grand",
    "Évry-Courcouronnes",
    "Vénissieux",
    "Cergy",
    "Levallois-Perret",
    "Valence",
    "Quimper",
    "Pessac",
    "Troyes",
    "Antony",
    "Ivry-sur-Seine",
    "Clichy",
    "Chambéry",
    "Lorient",
    "Niort",
    "Sarcelles",
    "Villejuif",
    "Saint-Quentin",
    "Hyères",
    "Épinay-sur-Seine",
    "Cayenne",
    "Pantin",
    "Beauvais",
    "Maisons-Alfort",
    "Chelles",
    "Fréjus",
    "Évreux",
    "Vannes",
    "Narbonne",
]
DOMAINS = ("gmail.com", "orange.fr", "free.fr", "hotmail.fr", "laposte.net", "sfr.fr", "yahoo.fr")
PLACEHOLDERS = (
    "test@test.fr",
    "aucun@aucun.fr",
    "noemail@gmail.com",
    "none@none.com",
    "x@x.x",
    "client@example.com",
    "aucune@orange.fr",
    "pasdemail@free.fr",
)
ACCENTS = str.maketrans("éèêëàâäîïôöûüùçÉÈÊËÀÂÎÏÔÛÙÇœ", "eeeeaaaiioouuucEEEEAAIIOUUCo")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _typo(rng: random.Random, s: str) -> str:
    if len(s) < 3:
        return s
    i = rng.randrange(1, len(s) - 1)
    kind = rng.random()
    if kind < 0.3:
        return s[:i] + rng.choice(LETTERS) + s[i + 1 :]
    if kind < 0.55:
        return s[:i] + s[i + 1 :]
    if kind < 0.8:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    return s[:i] + rng.choice(LETTERS) + s[i:]


def _styled(rng: random.Random, s: str) -> str:
    r = rng.random()
    if r < 0.25:
        s = s.translate(ACCENTS)
    elif r < 0.40:
        s = s.upper()
    elif r < 0.48:
        s = s.lower()
    if "-" in s and rng.random() < 0.4:
        s = s.replace("-", rng.choice((" ", "")))
    return s


def _particle_variant(rng: random.Random, s: str) -> str:
    """'de La Fontaine' → 'Delafontaine' / 'Fontaine' / 'DE LA FONTAINE'."""
    parts = s.split(" ")
    if len(parts) < 2:
        return s
    r = rng.random()
    if r < 0.4:
        return parts[-1]
    if r < 0.8:
        return "".join(parts).capitalize()
    return s.upper()


def _surname_pool(rng: random.Random, size: int) -> list[str]:
    pool = [n.replace("_", " ") for n in LAST]
    seen = set(pool)
    while len(pool) < size:
        name = "".join(rng.choice(SYL) for _ in range(rng.choice((1, 2, 2, 3))))
        name = (name + rng.choice(SUFFIX)).capitalize()
        if name not in seen:
            seen.add(name)
            pool.append(name)
    return pool


def generate(records: int, units: int = 100, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    rng = random.Random(seed)
    surnames = _surname_pool(rng, max(3000, records // 40))
    # Zipf-like weights: common names are common.
    sur_w = list(itertools.accumulate(1 / (i + 10) for i in range(len(surnames))))
    ff_w = list(itertools.accumulate(1 / (i + 3) for i in range(len(FIRST_F))))
    fm_w = list(itertools.accumulate(1 / (i + 3) for i in range(len(FIRST_M))))
    cities = [c.replace("_", " ") for c in CITIES]
    stores = []
    for u in range(units):
        dept = rng.randint(1, 95)
        stores.append(
            {
                "unit": f"store-{u:03d}",
                "city": cities[u % len(cities)],
                "dept": dept,
                "postcodes": [f"{dept:02d}{rng.randrange(1000):03d}" for _ in range(30)],
                "phone": f"+334{rng.randrange(10**8):08d}",
            }
        )
    shop_phone = {s["unit"]: s["phone"] for s in stores}
    people = int(records * 0.8)
    extra_choices = (0, 1, 2, 3)
    extra_weights = (0.80, 0.15, 0.04, 0.01)

    ids: list[str] = []
    units_col: list[str] = []
    first_col: list[str | None] = []
    last_col: list[str | None] = []
    bday_col: list[dt.date | None] = []
    pc_col: list[str | None] = []
    city_col: list[str | None] = []
    phone_col: list[str | None] = []
    email_col: list[str | None] = []
    truth: list[int] = []
    start_day = dt.date(1940, 1, 1).toordinal()
    span = dt.date(2006, 12, 31).toordinal() - start_day
    person = 0
    used_locals: set[str] = set()
    while len(ids) < records:
        female = rng.random() < 0.55
        first = rng.choices(FIRST_F if female else FIRST_M, cum_weights=ff_w if female else fm_w)[0]
        last = rng.choices(surnames, cum_weights=sur_w)[0]
        birthday = dt.date.fromordinal(start_day + rng.randrange(span))
        home = rng.randrange(units)
        store = stores[home]
        postcode = rng.choice(store["postcodes"])
        phone = f"+33{rng.choice('67')}{rng.randrange(10**8):08d}"
        base = rng.choice(
            (
                f"{first}.{last}",
                f"{first[0]}{last}",
                f"{first}{last}{rng.randrange(100)}",
                f"{last}.{first}{rng.randrange(1000)}",
            )
        )
        local = base.translate(ACCENTS).lower().replace(" ", "").replace("'", "")
        # A mailbox is one person's: two people never share a local part here.
        while local in used_locals:
            local = f"{local}{rng.randrange(10)}"
        used_locals.add(local)
        email = f"{local}@{rng.choice(DOMAINS)}"
        n = 1 + (rng.choices(extra_choices, extra_weights)[0] if person < people else 0)
        for k in range(n):
            if len(ids) >= records:
                break
            f, la, b, pc, city = first, last, birthday, postcode, store["city"]
            ph: str | None = phone
            em: str | None = email
            unit = store["unit"] if k == 0 or rng.random() < 0.3 else rng.choice(stores)["unit"]
            if k > 0:
                if rng.random() < 0.10:
                    f = _typo(rng, f)
                if rng.random() < 0.10:
                    la = _typo(rng, la)
                if " " in la and rng.random() < 0.5:
                    la = _particle_variant(rng, la)
                f, la = _styled(rng, f), _styled(rng, la)
                if rng.random() < 0.04:
                    f, la = la, f
                if female and rng.random() < 0.08:
                    la = rng.choices(surnames, cum_weights=sur_w)[0]  # maiden / married name
                r = rng.random()
                if r < 0.15:
                    ph = f"+33{rng.choice('67')}{rng.randrange(10**8):08d}"
                elif r < 0.35:
                    ph = None
                r = rng.random()
                if r < 0.25:
                    em = None
                elif r < 0.35:
                    em = f"{local}@{rng.choice(DOMAINS)}"
                elif r < 0.45:
                    em = f"{local}.{rng.randrange(10, 99)}@{rng.choice(DOMAINS)}"
                r = rng.random()
                if r < 0.20:
                    b = None
                elif r < 0.24 and b is not None:
                    b = _one_field_off(rng, b)
                if rng.random() < 0.08:
                    moved = rng.choice(stores)
                    pc, city = rng.choice(moved["postcodes"]), moved["city"]
            # Network noise on every record.
            r = rng.random()
            if r < 0.02:
                ph = shop_phone[unit]  # the shop's own phone
            elif r < 0.12:
                ph = None
            r = rng.random()
            if r < 0.03:
                em = rng.choice(PLACEHOLDERS)
            elif r < 0.13:
                em = None
            if rng.random() < 0.15:
                b = None
            if rng.random() < 0.0005:
                f = f + "\x00"
            ids.append(f"r{len(ids):07d}")
            units_col.append(unit)
            first_col.append(f)
            last_col.append(la)
            bday_col.append(b)
            pc_col.append(pc)
            city_col.append(_styled(rng, city) if rng.random() < 0.3 else city)
            phone_col.append(ph)
            email_col.append(em)
            truth.append(person)
        person += 1
    frame = pd.DataFrame(
        {
            "record_id": ids,
            "unit_id": units_col,
            "first_name": first_col,
            "last_name": last_col,
            "birthday": bday_col,
            "postcode": pc_col,
            "city": city_col,
            "phone": phone_col,
            "email": email_col,
        }
    )
    return frame, pd.Series(truth, index=ids)


def _one_field_off(rng: random.Random, b: dt.date) -> dt.date:
    r = rng.random()
    try:
        if r < 0.3 and b.day <= 12 and b.day != b.month:
            return b.replace(month=b.day, day=b.month)
        if r < 0.6:
            return b.replace(day=rng.randint(1, 28))
        if r < 0.8:
            return b.replace(month=rng.randint(1, 12))
        return b.replace(year=b.year + rng.choice((-1, 1, -10, 10)))
    except ValueError:
        return b
