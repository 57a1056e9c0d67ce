"""Sentence trees of the synthetic corpus, and the function words they are built from.

A `Sentence` is one or more main `Clause`s over `NounPhrase`s and `PrepPhrase`s built from the
entries of `nmtkit.data.synthetic.lexicon`; it says what a sentence means, not how.
`nmtkit.data.synthetic.grammar` renders a tree in English and in German,
`nmtkit.data.synthetic.builder` grows random trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from nmtkit.data.synthetic import lexicon as lx

# ------------------------------------------------------------------------- function words


class Pronoun(NamedTuple):
    en: str
    de: str
    person: int
    plural: bool
    en_poss: str = ""
    de_poss: str = ""


PERSONAL = (
    Pronoun("I", "ich", 1, False, "my", "mein"),
    Pronoun("you", "du", 2, False, "your", "dein"),
    Pronoun("he", "er", 3, False, "his", "sein"),
    Pronoun("she", "sie", 3, False, "her", "ihr"),
    Pronoun("we", "wir", 1, True, "our", "unser"),
    Pronoun("they", "sie", 3, True, "their", "ihr"),
)
HE, SHE, THEY = PERSONAL[2], PERSONAL[3], PERSONAL[5]
WEATHER_IT = Pronoun("it", "es", 3, False)
_EITHER_TENSE = (
    ("weil", "because"),
    ("obwohl", "although"),
    ("während", "while"),
    ("bevor", "before"),
)
# "when" is German "als" for one event in the past; "wenn" is "if" (or "whenever")
SUBORDINATORS = {
    "pres": (*_EITHER_TENSE, ("wenn", "if")),
    "past": (*_EITHER_TENSE, ("als", "when")),
}
COORDINATORS = (("und", "and"), ("aber", "but"), ("denn", "for"))
HOME = lx.Prep("nach Hause", "dat", "home", "dir", "")

# ------------------------------------------------------------------------- sentence trees


@dataclass(eq=False)
class NounPhrase:
    kind: str  # lexicon noun kind; "X" for the "es" of weather verbs
    noun: lx.Noun | None = None
    name: lx.Name | None = None
    pron: Pronoun | None = None
    det: str = ""  # def / indef / poss / dem / kein / num / bare
    plural: bool = False
    owner: Pronoun | None = None  # for det == "poss"
    number: lx.Number | None = None  # for det == "num"
    adjs: list[lx.Adjective] = field(default_factory=list)
    very: bool = False
    mod: PrepPhrase | None = None
    rel: RelClause | None = None
    partner: NounPhrase | None = None  # "der Mann und die Frau"
    gap: bool = False  # the phrase a relative pronoun stands for
    level: int = 0  # nesting level of its clause
    nest: int = 0  # how many prepositional phrases it is inside
    simple: bool = False  # second half of "X und Y": adjectives only
    referenced: bool = False  # a later pronoun refers to it


@dataclass(eq=False)
class PrepPhrase:
    prep: lx.Prep
    np: NounPhrase | None  # None for "nach Hause"
    np2: NounPhrase | None = None  # "zwischen X und Y"


@dataclass(eq=False)
class RelClause:
    role: str  # subj / acc / dat / prep: the relative pronoun's function
    clause: Clause
    prep: lx.Prep | None = None


@dataclass(eq=False)
class SubClause:
    conj: tuple[str, str]  # (German, English)
    clause: Clause
    fronted: bool


@dataclass(eq=False)
class Clause:
    verb: lx.Verb
    frame: str
    subj: NounPhrase
    tense: str
    dat: NounPhrase | None = None
    acc: NounPhrase | None = None
    pred: lx.Adjective | None = None
    very: bool = False
    place: PrepPhrase | None = None  # a place the frame needs: "ist im Garten", "wohnt im Haus"
    direction: PrepPhrase | None = None
    adverb: lx.Adverb | None = None
    adjuncts: list[PrepPhrase] = field(default_factory=list)
    comp: Clause | None = None  # dass-clause
    sub: SubClause | None = None
    front: str = "subj"  # what opens a main clause: subj / adv / pp
    topic: PrepPhrase | None = None  # the adjunct in front when front == "pp"
    level: int = 0
    gap_role: str = ""  # role of the relative pronoun when this is a relative clause


@dataclass(eq=False)
class Sentence:
    units: list[Clause]  # main clauses
    conjs: list[tuple[str, str]]  # the conjunction before each unit after the first
