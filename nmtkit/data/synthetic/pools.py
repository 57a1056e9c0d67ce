"""Lexicon pools the synthetic corpus's tree builder draws from.

Nouns by kind or tag, verb frames by subject kind and by the object they take, adjectives by
noun kind, place and direction prepositions, and the random choice of a noun phrase's
determiner. The pools are built from `nmtkit.data.synthetic.lexicon` in its order, so the same
RNG draws the same entries.
"""

from __future__ import annotations

import random

from nmtkit.data.synthetic import lexicon as lx
from nmtkit.data.synthetic.trees import PERSONAL, NounPhrase

PREP = {(p.de, p.use): p for p in lx.PREPOSITIONS}


def fits(noun: lx.Noun, spec: str) -> bool:
    """A noun fits a spec by kind (upper-case letters) or by tag (lower-case letters)."""
    return any(ch in (noun.kind if ch.isupper() else noun.tags) for ch in spec)


_NOUNS_FOR: dict[str, list[lx.Noun]] = {}


def nouns_for(spec: str) -> list[lx.Noun]:
    if spec not in _NOUNS_FOR:
        _NOUNS_FOR[spec] = [n for n in lx.NOUNS if fits(n, spec)]
    return _NOUNS_FOR[spec]


def _frame_pools() -> tuple[list[tuple[lx.Verb, str]], dict[str, list[tuple[lx.Verb, str]]]]:
    """All (verb, frame) choices, and those by subject kind; copula frames repeated as weight."""
    frames = [(v, f) for v in lx.VERBS for f in v.frames if f != "b"]
    copula = [(lx.BE, "cop")] * 14 + [(lx.BE, "copl")] * 5
    by_subject: dict[str, list[tuple[lx.Verb, str]]] = {}
    for verb, frame in frames + copula:
        kinds = "PATFDRV" if frame == "copl" else verb.subj
        for kind in kinds:
            by_subject.setdefault(kind, []).append((verb, frame))
    return frames + copula, by_subject


ALL_FRAMES, BY_SUBJECT = _frame_pools()
ADJECTIVES_FOR = {k: [a for a in lx.ADJECTIVES if k in a.kinds] for k in "PATFDRVLE"}
LOCATION = [p for p in lx.PREPOSITIONS if p.use == "loc"]
DIRECTION = [p for p in lx.PREPOSITIONS if p.use == "dir"]
_OBJECT_FRAMES: dict[tuple[str, str], list[tuple[lx.Verb, str]]] = {}


def object_frames(np: NounPhrase, role: str) -> list[tuple[lx.Verb, str]]:
    """Verb frames whose accusative (role "acc") or dative ("dat") object may be this phrase."""
    noun = np.noun or lx.NOUN["Mann"]  # names stand in for any person
    key = (noun.kind + noun.tags, role)
    if key not in _OBJECT_FRAMES:
        frames = ("a", "g", "t") if role == "acc" else ("d",)
        _OBJECT_FRAMES[key] = [(v, f) for v, f in ALL_FRAMES if f in frames and fits(noun, v.obj)]
    return _OBJECT_FRAMES[key]


# ------------------------------------------------------------------------------ determiners

_COUNT_DETS, _COUNT_WEIGHTS = (
    ("def", "indef", "poss", "dem", "bare", "num", "kein"),
    (45, 22, 10, 6, 8, 6, 3),
)
_MASS_DETS, _MASS_WEIGHTS = ("def", "poss", "dem", "bare", "kein"), (45, 10, 6, 35, 4)


def choose_determiner(rng: random.Random, np: NounPhrase) -> None:
    assert np.noun is not None
    if np.noun.mass:
        np.det = rng.choices(_MASS_DETS, _MASS_WEIGHTS)[0]
    else:
        np.det = rng.choices(_COUNT_DETS, _COUNT_WEIGHTS)[0]
        np.plural = np.det in ("bare", "num") or (np.det != "indef" and rng.random() < 0.25)
    if np.det == "kein" and np.nest:  # no "ohne keinen Hund" / "without no dog"
        np.det = "def"
    if np.det == "poss":
        np.owner = rng.choice(PERSONAL)
    elif np.det == "num":
        np.number = rng.choice(lx.NUMBERS)
