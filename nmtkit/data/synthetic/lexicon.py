"""English-German lexicon for the synthetic corpus (`nmtkit.data.synthetic`).

The word lists are data: `lexicon.json` next to this module holds one table per part of speech,
each with its column names, notes on the codes it uses and one entry per row (nouns grouped by
kind). This module defines the entry types and loads the tables at import; how the entries
inflect is in `nmtkit.data.synthetic.morphology`. To add a word, add a row: the generator picks
it up and only combines it where its kind fits (a verb lists the noun kinds it takes as subject
and object; a noun lists the prepositions it takes as a place). Then run
tests/data/test_synthetic.py, which checks every entry's German forms against the agreement
rules, and bump `GENERATOR_VERSION` in `nmtkit.data.synthetic.generator`.

Noun kinds: P person, A animal, T thing, F food, D drink, R text, V vehicle, L place, E event.
Noun tags: place prepositions i (in, aus), a (auf), u (unter), n (neben, hinter, vor, zwischen),
w (an), j (auf + accusative: "onto"), z (zu), d (durch), r (um), b (über: "across");
o openable, c clothing. Persons carry m/f instead: the English pronoun (he/she, else "it").
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, NamedTuple

DATA_FILE = "lexicon.json"


class Noun(NamedTuple):
    en: str
    en_pl: str  # "-" for mass nouns
    de: str
    de_pl: str  # "-" for mass nouns
    gender: str  # m / f / n
    kind: str
    tags: str
    oblique: str  # singular accusative/dative: differs for weak nouns ("den Jungen")
    en_pron: str  # he / she / it

    @property
    def mass(self) -> bool:
        return self.de_pl == "-"


class Adjective(NamedTuple):
    en: str
    de: str  # predicative form
    attr: str  # stem that takes the attributive ending ("hoh" for "hoch")
    order: int  # 1 opinion, 2 size, 3 quality, 4 age, 5 colour, 6 material: both languages
    kinds: str  # noun kinds it describes


class Verb(NamedTuple):
    en: str
    en3: str  # 3rd person singular present
    en_past: str
    de: str  # infinitive without the separable prefix
    prefix: str  # separable prefix ("an" of "anrufen"), "" if none
    pres: str  # irregular present forms "du,er" or "ich,du,er", "" if regular
    past: str  # Präteritum stem ("sah", "brachte"), "" for regular weak verbs
    frames: tuple[str, ...]
    subj: str  # noun kinds allowed as subject
    obj: str  # noun kinds (upper case) or tags (lower case) allowed as object


class Adverb(NamedTuple):
    en: str
    de: str
    kind: str  # t time, f frequency, m manner, p place
    tense: str  # pres / past / both
    pos: str  # English position: "pre" (before the verb) or "end" (end of the clause)
    front: bool  # may open a sentence


class Prep(NamedTuple):
    de: str
    case: str  # case it governs in this use
    en: str
    use: str  # loc / dir / com / ben / src / time
    tag: str  # noun tag it needs (place prepositions only)


class Name(NamedTuple):
    name: str
    gender: str


class Number(NamedTuple):
    en: str
    de: str


def _load_tables() -> dict[str, Any]:
    """The parsed data file; JSON objects keep the order they are written in."""
    text = resources.files(__package__ or __name__).joinpath(DATA_FILE).read_text("utf-8")
    tables: dict[str, Any] = json.loads(text)
    return tables


def _rows(tables: dict[str, Any], name: str, widths: tuple[int, ...]) -> list[list[Any]]:
    """The rows of one table, in file order; each must have one of the allowed widths."""
    table = tables[name]
    if "groups" in table:
        rows = [row for group in table["groups"].values() for row in group]
    else:
        rows = list(table["rows"])
    for row in rows:
        if len(row) not in widths:
            raise ValueError(f"{DATA_FILE}: {name} row {row!r} has {len(row)} fields")
    return rows


def _noun(f: list[str]) -> Noun:
    en, en_pl, de, de_pl, gender, kind_tags = f[:6]
    oblique = f[6] if len(f) > 6 else de
    kind, rest = kind_tags[0], kind_tags[1:]
    if kind == "P":  # persons: the letter is the English pronoun; every person takes "zu"
        pron = {"m": "he", "f": "she"}.get(rest, "it")
        return Noun(en, en_pl, de, de_pl, gender, kind, "z", oblique, pron)
    return Noun(en, en_pl, de, de_pl, gender, kind, rest, oblique, "it")


def _flag(value: object) -> bool:
    """A yes/no column: JSON true or false, nothing else."""
    if not isinstance(value, bool):
        raise ValueError(f"{DATA_FILE}: expected true or false, got {value!r}")
    return value


def _verb(f: list[str]) -> Verb:
    en, en3, en_past, de, pres, past, frames, subj, obj = f
    prefix, _, base = de.rpartition("~")
    return Verb(en, en3, en_past, base, prefix, pres, past, tuple(frames.split()), subj, obj)


_TABLES = _load_tables()
NOUNS = tuple(_noun(f) for f in _rows(_TABLES, "nouns", (6, 7)))
ADJECTIVES = tuple(
    Adjective(f[0], f[1], f[2] or f[1], int(f[3]), f[4]) for f in _rows(_TABLES, "adjectives", (5,))
)
VERBS = tuple(_verb(f) for f in _rows(_TABLES, "verbs", (9,)))
ADVERBS = tuple(
    Adverb(f[0], f[1], f[2], f[3], f[4], _flag(f[5])) for f in _rows(_TABLES, "adverbs", (6,))
)
PREPOSITIONS = tuple(Prep(*f) for f in _rows(_TABLES, "prepositions", (5,)))
NAMES = tuple(Name(*f) for f in _rows(_TABLES, "names", (2,)))
NUMBERS = tuple(Number(*f) for f in _rows(_TABLES, "numbers", (2,)))

# The copula is not drawn like other verbs: clauses with "sein" have their own frames.
BE = Verb("be", "is", "was", "sein", "", "", "", ("cop", "copl"), "PATFDRVLE", "")

NOUN = {n.de: n for n in NOUNS}
VERB = {v.prefix + v.de: v for v in VERBS}
ADJECTIVE = {a.en: a for a in ADJECTIVES}
ADVERB = {a.en: a for a in ADVERBS}


def lexicon_size() -> int:
    """Entries written for the corpus: nouns, adjectives, verbs, adverbs, prepositions, names
    and number words, each counted once."""
    prepositions = len({p.de for p in PREPOSITIONS})  # a two-way preposition counts once
    lists = (NOUNS, ADJECTIVES, VERBS, ADVERBS, NAMES, NUMBERS)
    return prepositions + sum(len(entries) for entries in lists)
