"""German and English inflection for the synthetic corpus (`nmtkit.data.synthetic`).

The rules that turn a lexicon entry (`nmtkit.data.synthetic.lexicon`) into the form a sentence
needs: German articles, relative pronouns and attributive adjective endings by case and
gender/number, German noun forms (weak nouns, dative plural), and finite verb forms in both
languages, present and Präteritum. The genitive is never generated, so no paradigm has it.
"""

from __future__ import annotations

from nmtkit.data.synthetic.lexicon import Noun, Verb


def _paradigm(nom: str, acc: str, dat: str) -> dict[str, dict[str, str]]:
    """case -> {m, f, n, pl} -> form, from three rows of four forms ("-" = empty ending)."""
    rows = {"nom": nom, "acc": acc, "dat": dat}
    keys = ("m", "f", "n", "pl")
    return {
        case: dict(zip(keys, (w.strip("-") for w in row.split()), strict=True))
        for case, row in rows.items()
    }


# Articles and pronouns by case and gender/number (the genitive is never generated).
DEFINITE = _paradigm("der die das die", "den die das die", "dem der dem den")
RELATIVE = _paradigm("der die das die", "den die das die", "dem der dem denen")
DIESER = _paradigm("er e es e", "en e es e", "em er em en")  # endings of dieser
EIN = _paradigm("- e - e", "en e - e", "em er em en")  # endings of ein, kein, mein, ...
# Attributive adjective endings: weak after der/dieser (and after ein-words in the plural),
# mixed after ein-words in the singular, strong with no determiner or after a number.
ADJ_WEAK = _paradigm("e e e en", "en e e en", "en en en en")
ADJ_MIXED = _paradigm("er e es en", "en e es en", "en en en en")
ADJ_STRONG = _paradigm("er e es e", "en e es e", "em er em en")


def de_noun(noun: Noun, case: str, plural: bool) -> str:
    """German noun form: weak nouns add -(e)n outside the nominative, dative plural adds -n."""
    if not plural:
        return noun.de if case == "nom" else noun.oblique
    if case == "dat" and not noun.de_pl.endswith(("n", "s")):
        return noun.de_pl + "n"
    return noun.de_pl


_SEIN = {
    "pres": ("bin", "bist", "ist", "sind", "sind"),
    "past": ("war", "warst", "war", "waren", "waren"),
}
_BE = {"pres": ("am", "are", "is", "are", "are"), "past": ("was", "were", "was", "were", "were")}
_SLOTS = {(1, False): 0, (2, False): 1, (3, False): 2, (1, True): 3, (3, True): 4}


def _stem(infinitive: str) -> str:
    return infinitive[:-1] if infinitive.endswith(("eln", "ern")) else infinitive[:-2]


def _needs_e(stem: str) -> bool:
    """Stems in -d/-t or consonant + m/n insert an e before -st/-t: findest, öffnet, zeichnet."""
    if stem.endswith(("d", "t")):
        return True
    if stem[-1] not in "mn" or stem[-2] in "aeiouäöülrmn":
        return False
    return not (stem[-2] == "h" and stem[-3] in "aeiouäöü")  # lengthening h: wohnst


def de_finite(verb: Verb, person: int, plural: bool, tense: str) -> str:
    """Finite German verb form, without the separable prefix (ich, du, er, wir, sie)."""
    slot = _SLOTS[(person, plural)]
    if verb.de == "sein":
        return _SEIN[tense][slot]
    if tense == "past":
        return _de_past(verb, slot)
    irregular = verb.pres.split(",") if verb.pres else []
    if len(irregular) == 3 and slot < 3:
        return irregular[slot]
    if len(irregular) == 2 and slot in (1, 2):
        return irregular[slot - 1]
    stem = _stem(verb.de)
    e = "e" if _needs_e(stem) else ""
    if slot == 0:
        return stem + "e"
    if slot == 1:  # du: the s of -st merges into a stem-final sibilant (du tanzt, du liest)
        return stem + "t" if stem.endswith(("s", "ß", "z", "x")) else stem + e + "st"
    return stem + e + "t" if slot == 2 else verb.de


def _de_past(verb: Verb, slot: int) -> str:
    """Präteritum: weak stems end in -te (wir -ten); strong ones add -st/-est and -en."""
    stem = verb.past
    if not stem:
        base = _stem(verb.de)
        stem = base + ("ete" if _needs_e(base) else "te")
    if slot in (0, 2):
        return stem
    if slot == 1:
        strong_e = not stem.endswith("te") and stem.endswith(("s", "ß", "z", "d", "t"))
        return stem + ("est" if strong_e else "st")
    return stem + ("n" if stem.endswith("e") else "en")


def en_finite(verb: Verb, person: int, plural: bool, tense: str) -> str:
    """Finite English verb form: 3rd person singular -s in the present, one past form."""
    if verb.en == "be":
        return _BE[tense][_SLOTS[(person, plural)]]
    if tense == "past":
        return verb.en_past
    return verb.en3 if person == 3 and not plural else verb.en
