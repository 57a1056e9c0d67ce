"""English and German rendering of the synthetic corpus's sentence trees.

A `Sentence` (`nmtkit.data.synthetic.trees`) says what a sentence means, not how.
`render_sentence` writes it twice, with English and with German word order and morphology (the
inflected forms come from `nmtkit.data.synthetic.morphology`), so both sides always say the same
thing. `nmtkit.data.synthetic.builder` grows random trees.

Grammar covered
    Noun phrases: der/ein/kein/possessive/dieser/number/no determiner, up to two adjectives in
    the usual order (optionally "sehr"), a prepositional modifier ("der Hund im Garten"), a
    relative clause, "X und Y"; names; personal pronouns. Articles and adjectives agree in gender,
    number and case (weak, mixed and strong endings); weak nouns ("den Jungen"); dative plural -n;
    "im", "zum", "zur", ... contractions.
    Verbs: present and Präteritum, every person but 2nd plural; weak, strong, mixed and separable
    verbs ("ruft ... an"). Frames: intransitive, motion with a direction (two-way prepositions
    with the accusative: "in den Garten" vs "im Garten"), located ("wohnt im Haus"), accusative
    object, dative object ("hilft dem Kind"), dative + accusative ("gibt dem Kind einen Apfel",
    English "explains the story to the child"), dass-clauses, copula with adjective or place,
    weather verbs.
    Clauses: verb-second main clauses with the subject, an adverb or a prepositional phrase in
    front; inversion after a fronted subordinate clause ("Weil der Hund müde ist, schläft er.");
    verb-final subordinate clauses (weil, obwohl, während, bevor, wenn/als, dass) and relative
    clauses (subject, object, dative and prepositional relative pronouns), a relative clause on
    the last phrase before the verb moved behind it; main clauses joined by und/aber/denn;
    subject pronouns referring back to a subject ("das Mädchen ... es" / "the girl ... she").
    German commas around every subordinate and relative clause and before aber/denn; English
    restrictive relative clauses have no commas, those after a name do.
"""

from __future__ import annotations

from nmtkit.data.synthetic import lexicon as lx
from nmtkit.data.synthetic.morphology import (
    ADJ_MIXED,
    ADJ_STRONG,
    ADJ_WEAK,
    DEFINITE,
    DIESER,
    EIN,
    RELATIVE,
    de_finite,
    de_noun,
    en_finite,
)
from nmtkit.data.synthetic.trees import (
    Clause,
    NounPhrase,
    PrepPhrase,
    RelClause,
    Sentence,
    SubClause,
)

_CONTRACTIONS = {
    ("in", "dem"): "im",
    ("in", "das"): "ins",
    ("an", "dem"): "am",
    ("zu", "dem"): "zum",
    ("zu", "der"): "zur",
    ("von", "dem"): "vom",
}
_DE_ORDER = {"time": 0, "com": 1, "ben": 1, "loc": 2}  # German: time, manner, place
_EN_ORDER = {"com": 0, "ben": 0, "loc": 1, "time": 2}  # English: manner, place, time
_PUNCT = (",", ".")

# ---------------------------------------------------------------------------- German side


def agreement(np: NounPhrase) -> tuple[int, bool]:
    """Person and number the verb agrees with."""
    if np.pron:
        return np.pron.person, np.pron.plural
    return 3, np.plural or np.partner is not None


def _gender(np: NounPhrase) -> str:
    """Gender/number column of a paradigm for agreement with the whole phrase."""
    if np.plural or np.partner:
        return "pl"
    if np.noun:
        return np.noun.gender
    return np.name.gender if np.name else "n"


def _de_core(np: NounPhrase, case: str) -> list[str]:
    """Determiner, adjectives and noun, inflected for case, gender and number."""
    assert np.noun is not None
    key = "pl" if np.plural else np.noun.gender
    words: list[str] = []
    endings = ADJ_STRONG  # strong endings when no determiner shows the case: "kaltes Wasser"
    if np.det in ("def", "dem"):
        words.append(DEFINITE[case][key] if np.det == "def" else "dies" + DIESER[case][key])
        endings = ADJ_WEAK  # the article shows case and gender: "der große Hund"
    elif np.det in ("indef", "poss", "kein"):
        stem = np.owner.de_poss if np.owner else ("ein" if np.det == "indef" else "kein")
        words.append(stem + EIN[case][key])
        endings = ADJ_MIXED  # "ein großer Hund", "einen großen Hund"
    elif np.det == "num":
        assert np.number is not None
        words.append(np.number.de)  # numbers do not inflect: "zwei große Hunde"
    if np.very:
        words.append("sehr")
    words += [adj.attr + endings[case][key] for adj in np.adjs]
    return [*words, de_noun(np.noun, case, np.plural)]


def de_np(np: NounPhrase, case: str) -> tuple[list[str], list[str]]:
    """A German noun phrase as (body, tail): tail is a trailing relative clause, which the
    caller may move behind the verb."""
    if np.pron:
        return [np.pron.de], []
    body = [np.name.name] if np.name else _de_core(np, case)
    tail: list[str] = []
    if np.mod:
        mod_body, tail = de_pp(np.mod)
        body += mod_body
    if np.rel:
        body += tail
        tail = _de_rel(np.rel, np)
    if np.partner:  # coordinated nouns take the same case: "den Mann und die Frau"
        body += ["und", *_de_core(np.partner, case)]
    return body, tail


def de_pp(pp: PrepPhrase) -> tuple[list[str], list[str]]:
    """Preposition + phrase in the case the preposition governs (in this use)."""
    if pp.np is None:
        return [pp.prep.de], []
    body, tail = de_np(pp.np, pp.prep.case)
    contracted = _CONTRACTIONS.get((pp.prep.de, body[0]))  # in dem -> im, zu der -> zur
    body = [contracted, *body[1:]] if contracted else [pp.prep.de, *body]
    if pp.np2:
        body2, tail2 = de_np(pp.np2, pp.prep.case)
        body, tail = [*body, *tail, "und", *body2], tail2
    return body, tail


def _de_rel(rel: RelClause, antecedent: NounPhrase) -> list[str]:
    """Relative clause: the pronoun takes gender and number from the antecedent and its case from
    its role in the clause ("den Mann, den ich sehe"); the verb goes last; commas on both sides."""
    key = _gender(antecedent)
    if rel.prep:
        head = [rel.prep.de, RELATIVE[rel.prep.case][key]]  # "in dem", never contracted
    else:
        head = [RELATIVE[{"subj": "nom", "acc": "acc", "dat": "dat"}[rel.role]][key]]
    return [",", *head, *_de_final(rel.clause), ","]


def _de_middle(c: Clause, skip: object) -> list[tuple[list[str], list[str]]]:
    """Middle field in order: subject, adverb, dative, accusative, adjuncts (time, manner, place),
    direction or place, predicate adjective. `skip` is whatever opens the clause."""
    parts = []
    if not c.subj.gap and c.subj is not skip:
        parts.append(de_np(c.subj, "nom"))
    if c.adverb and c.adverb is not skip:
        parts.append(([c.adverb.de], []))
    for np, case in ((c.dat, "dat"), (c.acc, "acc")):
        if np and not np.gap:
            parts.append(de_np(np, case))
    adjuncts = sorted(c.adjuncts, key=lambda pp: _DE_ORDER[pp.prep.use])
    for pp in [p for p in adjuncts if p is not skip] + [p for p in (c.direction, c.place) if p]:
        parts.append(de_pp(pp))
    if c.pred:
        parts.append(((["sehr"] if c.very else []) + [c.pred.de], []))
    return parts


def _de_flatten(
    parts: list[tuple[list[str], list[str]]], extrapose: bool
) -> tuple[list[str], list[str]]:
    """Join the middle field; a relative clause on its last phrase moves behind the verb."""
    words = [w for body, tail in parts for w in body + tail]
    if extrapose and parts and parts[-1][1]:
        tail = parts[-1][1]
        return words[: -len(tail)], tail
    return words, []


def _de_verb(c: Clause) -> tuple[str, str]:
    person, plural = agreement(c.subj)
    return de_finite(c.verb, person, plural, c.tense), c.verb.prefix


def _de_post(c: Clause, tail: list[str]) -> list[str]:
    """After the verb: an extraposed relative clause, the dass-clause, a subordinate clause."""
    words = list(tail)
    if c.comp:
        words += [",", "dass", *_de_final(c.comp), ","]
    if c.sub and not c.sub.fronted:
        words += [",", *_de_sub(c.sub)]
    return words


def _de_final(c: Clause) -> list[str]:
    """Verb-final order of subordinate and relative clauses: the prefix joins the verb (anruft)."""
    middle, tail = _de_flatten(_de_middle(c, None), extrapose=c.comp is None)
    finite, prefix = _de_verb(c)
    return [*middle, prefix + finite, *_de_post(c, tail)]


def _de_sub(sub: SubClause) -> list[str]:
    return [sub.conj[0], *_de_final(sub.clause), ","]


def _de_main(c: Clause) -> list[str]:
    """Verb second: one constituent, the finite verb, the middle field, the separable prefix."""
    skip: object = None
    if c.sub and c.sub.fronted:  # the subordinate clause fills the first position: inversion
        prefield = _de_sub(c.sub)
    elif c.front == "adv" and c.adverb:
        prefield, skip = [c.adverb.de], c.adverb
    elif c.front == "pp" and c.topic:
        body, tail = de_pp(c.topic)
        prefield, skip = body + tail, c.topic
    else:
        body, tail = de_np(c.subj, "nom")
        prefield, skip = body + tail, c.subj
    middle, tail = _de_flatten(_de_middle(c, skip), extrapose=c.comp is None)
    finite, prefix = _de_verb(c)
    return [*prefield, finite, *middle, *([prefix] if prefix else []), *_de_post(c, tail)]


# --------------------------------------------------------------------------- English side


def en_core(np: NounPhrase) -> list[str]:
    assert np.noun is not None
    rest = (["very"] if np.very else []) + [a.en for a in np.adjs]
    rest.append(np.noun.en_pl if np.plural else np.noun.en)
    if np.det == "indef":
        det = "an" if rest[0][0] in "aeiou" else "a"
    elif np.det == "dem":
        det = "these" if np.plural else "this"
    elif np.owner:
        det = np.owner.en_poss
    elif np.number:
        det = np.number.en
    else:
        det = {"def": "the", "kein": "no"}.get(np.det, "")
    return [det, *rest] if det else rest


def en_np(np: NounPhrase) -> list[str]:
    if np.pron:
        return [np.pron.en]
    words = [np.name.name] if np.name else en_core(np)
    if np.mod:
        words += en_pp(np.mod)
    if np.rel:
        words += en_rel(np.rel, np)
    if np.partner:
        words += ["and", *en_core(np.partner)]
    return words


def en_pp(pp: PrepPhrase) -> list[str]:
    if pp.np is None:
        return [pp.prep.en]
    words = [pp.prep.en, *en_np(pp.np)]
    return [*words, "and", *en_np(pp.np2)] if pp.np2 else words


def en_rel(rel: RelClause, antecedent: NounPhrase) -> list[str]:
    person = antecedent.kind == "P"
    if rel.prep:
        head = [rel.prep.en, "whom" if person else "which"]
    elif rel.role == "subj":
        head = ["who" if person else "that"]
    else:
        head = ["whom" if person else "that"]
    words = head + en_clause(rel.clause)
    # after a name the clause only adds information, so English sets it off with commas
    return [",", *words, ","] if antecedent.name else words


def en_clause(c: Clause, fronting: bool = False) -> list[str]:
    """Subject, verb, objects, complements, adjuncts (manner, place, time), adverb, clauses."""
    front: list[str] = []
    if fronting and c.front == "adv" and c.adverb:
        front = [c.adverb.en]
    elif fronting and c.front == "pp" and c.topic:
        front = en_pp(c.topic)
    adverb = None if front and c.front == "adv" else c.adverb
    pre = [adverb.en] if adverb and adverb.pos == "pre" else []
    person, plural = agreement(c.subj)
    verb = en_finite(c.verb, person, plural, c.tense)
    words = front + ([] if c.subj.gap else en_np(c.subj))
    words += [verb, *pre] if c.verb is lx.BE else [*pre, verb]  # "is often", "often sees"
    dat = en_np(c.dat) if c.dat and not c.dat.gap else []
    acc = en_np(c.acc) if c.acc and not c.acc.gap else []
    words += [*acc, "to", *dat] if dat and "t" in c.verb.frames else dat + acc
    if c.pred:
        words += (["very"] if c.very else []) + [c.pred.en]
    for pp in (c.place, c.direction, *sorted(c.adjuncts, key=lambda pp: _EN_ORDER[pp.prep.use])):
        if pp and not (front and pp is c.topic):
            words += en_pp(pp)
    if adverb and adverb.pos == "end":
        words.append(adverb.en)
    if c.comp:
        words += ["that", *en_clause(c.comp)]
    if c.sub and not c.sub.fronted:
        words += [c.sub.conj[1], *en_clause(c.sub.clause)]
    return words


def _en_main(c: Clause) -> list[str]:
    if c.sub and c.sub.fronted:
        return [c.sub.conj[1], *en_clause(c.sub.clause), ",", *en_clause(c)]
    return en_clause(c, fronting=True)


def _detokenize(tokens: list[str]) -> str:
    """Join words with single spaces, punctuation attached; a comma that meets another comma or
    the full stop (the end of an embedded clause) merges into it; capitalise the first letter."""
    words: list[str] = []
    for token in tokens:
        if token not in _PUNCT:
            words.append(token)
        elif words[-1].endswith(","):
            words[-1] = words[-1][:-1] + token
        else:
            words[-1] += token
    text = " ".join(words)
    return text[0].upper() + text[1:]


def render_sentence(sentence: Sentence) -> tuple[str, str]:
    """(English, German) text of a sentence tree."""
    en: list[str] = []
    de: list[str] = []
    for i, unit in enumerate(sentence.units):
        if i:
            conj_de, conj_en = sentence.conjs[i - 1]
            if conj_de != "und":  # comma before aber/denn; optional before und, left out
                en.append(",")
                de.append(",")
            en.append(conj_en)
            de.append(conj_de)
        en += _en_main(unit)
        de += _de_main(unit)
    return _detokenize([*en, "."]), _detokenize([*de, "."])


def count_words(tokens: list[str]) -> int:
    """English words in rendered tokens: a multi-word entry counts each word, punctuation none."""
    return sum(len(t.split()) for t in tokens if t not in _PUNCT)
