"""Random sentence trees for the synthetic corpus.

`Builder` starts from one minimal clause and applies random growth steps (adjective, noun
modifier, relative clause, adverb, adjunct, subordinate clause, coordinated clause, coordinated
noun) until the English side reaches a target length; `nmtkit.data.synthetic.generator` draws
that length and renders the tree. Clause nesting is capped at MAX_LEVEL, so long sentences come
from more clauses rather than unbounded recursion.
"""

from __future__ import annotations

import random

from nmtkit.data.synthetic import lexicon as lx
from nmtkit.data.synthetic.grammar import (
    agreement,
    count_words,
    en_clause,
    en_core,
    en_pp,
    en_rel,
)
from nmtkit.data.synthetic.pools import (
    ADJECTIVES_FOR,
    ALL_FRAMES,
    BY_SUBJECT,
    DIRECTION,
    LOCATION,
    PREP,
    choose_determiner,
    nouns_for,
    object_frames,
)
from nmtkit.data.synthetic.trees import (
    COORDINATORS,
    HE,
    HOME,
    PERSONAL,
    SHE,
    SUBORDINATORS,
    THEY,
    WEATHER_IT,
    Clause,
    NounPhrase,
    PrepPhrase,
    Pronoun,
    RelClause,
    Sentence,
    SubClause,
)

MAX_LEVEL = 3  # deepest clause nesting; the main clause is level 0
MAX_NEST = 2  # longest chain of noun-modifying prepositional phrases


class Builder:
    """Grows one sentence tree; keeps lists of the parts a growth step may extend."""

    def __init__(self, rng: random.Random, target: int) -> None:
        self.rng = rng
        self.target = target
        self.tense = "past" if rng.random() < 0.35 else "pres"
        self.nps: list[NounPhrase] = []  # phrases that may take adjectives, modifiers, clauses
        self.args: list[NounPhrase] = []  # subjects and objects that may become "X und Y"
        self.clauses: list[Clause] = []
        self.units: list[Clause] = []
        self.conjs: list[tuple[str, str]] = []
        self.length = 0

    def build(self) -> Sentence:
        self.units.append(self.clause(0))
        self.length = count_words(en_clause(self.units[0]))
        misses = 0
        while self.length < self.target and misses < 30:
            added = self.grow()
            misses = 0 if added else misses + 1
            self.length += added
        for unit in self.units:
            self.choose_front(unit)
        return Sentence(self.units, self.conjs)

    def grow(self) -> int:
        """One random growth step; returns the number of English words it added (0: none)."""
        remaining = self.target - self.length
        clause_weight = 2.5 if remaining > 10 else 0.3 if remaining <= 3 else 1.0
        steps = (
            (self.grow_adjective, 3.0),
            (self.grow_modifier, 2.0),
            (self.grow_relative, 2.5 * clause_weight),
            (self.grow_adverb, 1.5),
            (self.grow_adjunct, 2.0),
            (self.grow_subordinate, 1.5 * clause_weight),
            (self.grow_coordinate, 1.0 * clause_weight),
            (self.grow_partner, 0.4),
        )
        step = self.rng.choices([s for s, _ in steps], [w for _, w in steps])[0]
        return step()

    # ------------------------------------------------------------------ phrases and clauses

    def noun_phrase(
        self, spec: str, level: int, nest: int = 0, pronoun: bool = False
    ) -> NounPhrase:
        """A random phrase whose noun fits `spec`; persons may be names or pronouns."""
        if "P" in spec:
            roll = self.rng.random()
            if pronoun and roll < 0.12:
                return NounPhrase("P", pron=self.rng.choice(PERSONAL))
            if roll < 0.24:
                np = NounPhrase("P", name=self.rng.choice(lx.NAMES), level=level, nest=nest)
                self.nps.append(np)
                return np
        return self.common_noun(self.rng.choice(nouns_for(spec)), level, nest)

    def common_noun(self, noun: lx.Noun, level: int, nest: int, simple: bool = False) -> NounPhrase:
        np = NounPhrase(noun.kind, noun=noun, level=level, nest=nest, simple=simple)
        choose_determiner(self.rng, np)
        self.nps.append(np)
        return np

    def pick_frame(self, kind: str, level: int, gap_role: str) -> tuple[lx.Verb, str]:
        pool = BY_SUBJECT[kind] if kind else ALL_FRAMES
        comp_ok = level < MAX_LEVEL and self.target - self.length > 8
        for _ in range(1000):
            verb, frame = self.rng.choice(pool)
            if frame in ("c", "k") and not comp_ok:
                continue
            if gap_role in ("loc", "com") and frame in ("cop", "w"):
                continue
            if gap_role == "com" and not ("P" in verb.subj or "A" in verb.subj):
                continue
            return verb, frame
        raise RuntimeError(f"no verb frame for subject kind {kind!r}")

    def clause(
        self,
        level: int,
        subj: NounPhrase | None = None,
        frame: tuple[lx.Verb, str] | None = None,
        gap_role: str = "",
    ) -> Clause:
        """A minimal clause: verb, subject and the arguments its frame requires."""
        verb, fr = frame or self.pick_frame(subj.kind if subj else "", level, gap_role)
        if subj is None and fr == "w":
            subj = NounPhrase("X", pron=WEATHER_IT)
        elif subj is None:
            kinds = "".join(k for k in verb.subj if k in "PA") if gap_role == "com" else verb.subj
            subj = self.argument(self.rng.choice(kinds), level, pronoun=True)
        c = Clause(verb, fr, subj, self.tense, level=level, gap_role=gap_role)
        gap = NounPhrase("", gap=True)
        if fr in ("d", "g", "t", "k"):
            c.dat = (
                gap if gap_role == "dat" else self.argument(verb.obj if fr == "d" else "P", level)
            )
        if fr in ("a", "g", "t"):
            c.acc = gap if gap_role == "acc" else self.argument(verb.obj, level)
        if fr in ("c", "k"):
            c.comp = self.clause(level + 1)
        if fr == "cop":
            c.pred = self.rng.choice(ADJECTIVES_FOR[subj.kind])
            c.very = self.rng.random() < 0.1
        if fr in ("l", "copl") and gap_role != "loc":
            c.place = self.location(level, 0)
        if fr == "m" and self.rng.random() < 0.85:
            c.direction = self.direction(level)
        self.clauses.append(c)
        return c

    def argument(self, spec: str, level: int, pronoun: bool = False) -> NounPhrase:
        np = self.noun_phrase(spec, level, pronoun=pronoun)
        if np.noun:
            self.args.append(np)
        return np

    def location(self, level: int, nest: int, tags: str = "iaunw") -> PrepPhrase:
        """Where something is: two-way prepositions with the dative ("im Garten")."""
        noun = self.rng.choice(nouns_for(tags))
        prep = self.rng.choice([p for p in LOCATION if p.tag in noun.tags and p.tag in tags])
        np = self.common_noun(noun, level, nest + 1)
        if prep.de != "zwischen":
            return PrepPhrase(prep, np)
        other = self.rng.choice(nouns_for("n"))
        while other is noun:
            other = self.rng.choice(nouns_for("n"))
        return PrepPhrase(prep, np, self.common_noun(other, level, nest + 1))

    def direction(self, level: int) -> PrepPhrase:
        """Where something goes: two-way prepositions with the accusative ("in den Garten")."""
        if self.rng.random() < 0.08:
            return PrepPhrase(HOME, None)
        prep = self.rng.choice(DIRECTION)
        return PrepPhrase(prep, self.common_noun(self.rng.choice(nouns_for(prep.tag)), level, 1))

    def coreferent(self, np: NounPhrase) -> NounPhrase | None:
        """A subject pronoun for `np`: German follows grammatical gender (das Mädchen -> es),
        English natural gender (the girl -> she)."""
        if np.gap or np.kind == "X":
            return None
        np.referenced = True
        if np.pron:
            return NounPhrase(np.kind, pron=np.pron)
        if np.plural or np.partner:
            return NounPhrase(np.kind, pron=THEY)
        if np.name:
            return NounPhrase(np.kind, pron=HE if np.name.gender == "m" else SHE)
        assert np.noun is not None
        de = {"m": "er", "f": "sie", "n": "es"}[np.noun.gender]
        return NounPhrase(np.kind, pron=Pronoun(np.noun.en_pron, de, 3, False))

    # ------------------------------------------------------------------------ growth steps

    def grow_adjective(self) -> int:
        if not self.nps:
            return 0
        np = self.rng.choice(self.nps)
        if np.noun is None or len(np.adjs) >= 2:
            return 0
        adj = self.rng.choice(ADJECTIVES_FOR[np.kind])
        if any(a.order == adj.order for a in np.adjs):  # no "big small", no "red green"
            return 0
        np.adjs = sorted([*np.adjs, adj], key=lambda a: a.order)
        if len(np.adjs) == 1 and self.rng.random() < 0.1:
            np.very = True
            return 2
        return 1

    def grow_modifier(self) -> int:
        if not self.nps:
            return 0
        np = self.rng.choice(self.nps)
        if np.noun is None or np.mod or np.partner or np.simple or np.nest >= MAX_NEST:
            return 0
        kind, rng = np.kind, self.rng
        options = (
            ["loc"]
            + ["with"] * (kind == "P")
            + ["for"] * (kind in "TFR")
            + ["from"] * (kind == "R")
        )
        option = rng.choice(options)
        if option == "loc":  # places relate to places: "das Haus neben der Kirche"
            np.mod = self.location(np.level, np.nest, "n" if kind == "L" else "iaunw")
        elif option == "with":
            np.mod = PrepPhrase(PREP["mit", "com"], self.noun_phrase("Ac", np.level, np.nest + 1))
        else:
            prep = PREP[("für", "ben") if option == "for" else ("von", "src")]
            np.mod = PrepPhrase(prep, self.noun_phrase("P", np.level, np.nest + 1))
        return count_words(en_pp(np.mod))

    def grow_relative(self) -> int:
        if not self.nps:
            return 0
        np = self.rng.choice(self.nps)
        if np.rel or np.partner or np.simple or np.level >= MAX_LEVEL:
            return 0
        np.rel = self.relative(np)
        return count_words(en_rel(np.rel, np))

    def relative(self, np: NounPhrase) -> RelClause:
        """A relative clause on `np`, the relative pronoun in a role the phrase can fill."""
        level, rng = np.level + 1, self.rng
        places = [p for p in LOCATION if np.noun and p.tag in np.noun.tags and p.de != "zwischen"]
        roles = {
            "subj": 5.0,
            "acc": 3.0 if object_frames(np, "acc") else 0.0,
            "dat": 1.0 if object_frames(np, "dat") else 0.0,
            "loc": 1.5 if places else 0.0,
            "com": 0.7 if np.kind in "PA" else 0.0,
        }
        role = rng.choices(list(roles), list(roles.values()))[0]
        if role == "subj":
            gap = NounPhrase(np.kind, gap=True, plural=agreement(np)[1])
            return RelClause("subj", self.clause(level, subj=gap, gap_role="subj"))
        if role in ("acc", "dat"):
            frame = rng.choice(object_frames(np, role))
            return RelClause(role, self.clause(level, frame=frame, gap_role=role))
        prep = rng.choice(places) if role == "loc" else PREP["mit", "com"]
        return RelClause("prep", self.clause(level, gap_role=role), prep)

    def grow_adverb(self) -> int:
        c = self.rng.choice(self.clauses)
        adverb = self.rng.choice(lx.ADVERBS)
        # no manner ("quickly") with "be" or weather, no place ("at home") next to a place or goal
        kinds = (
            "tf" if c.frame in ("cop", "copl", "w", "l") else "tfm" if c.frame == "m" else "tfmp"
        )
        if c.adverb or adverb.tense not in ("both", c.tense) or adverb.kind not in kinds:
            return 0
        c.adverb = adverb
        return count_words([adverb.en])

    def grow_adjunct(self) -> int:
        c, rng = self.rng.choice(self.clauses), self.rng
        uses = self.adjunct_uses(c)
        if len(c.adjuncts) >= 2 or not uses:
            return 0
        use = rng.choice(uses)
        if use == "loc":
            pp = self.location(c.level, 0)
        elif use == "time":
            event = self.common_noun(rng.choice(nouns_for("E")), c.level, 1)
            pp = PrepPhrase(PREP[rng.choice(("nach", "vor")), "time"], event)
        elif use == "com":
            prep = PREP["mit" if rng.random() < 0.8 else "ohne", "com"]
            pp = PrepPhrase(prep, self.noun_phrase("PA", c.level, 1))
        else:
            pp = PrepPhrase(PREP["für", "ben"], self.noun_phrase("P", c.level, 1))
        c.adjuncts.append(pp)
        return count_words(en_pp(pp))

    def adjunct_uses(self, c: Clause) -> list[str]:
        """Kinds of optional prepositional phrase the clause can still take."""
        taken = [pp.prep.use for pp in c.adjuncts]
        uses = [] if "time" in taken else ["time"]
        if c.frame in ("cop", "copl"):
            return uses
        if "loc" not in taken and c.place is None and c.gap_role != "loc":
            uses.append("loc")
        if c.frame == "w":
            return uses
        if c.subj.kind in ("P", "A") and "com" not in taken and c.gap_role != "com":
            uses.append("com")
        if "b" in c.verb.frames and "ben" not in taken:
            uses.append("ben")
        return uses

    def grow_subordinate(self) -> int:
        rng = self.rng
        host = rng.choice(self.units) if rng.random() < 0.6 else rng.choice(self.clauses)
        if host.sub or host.level >= MAX_LEVEL:
            return 0
        index = next((i for i, unit in enumerate(self.units) if unit is host), None)
        after_denn = index is not None and index > 0 and self.conjs[index - 1][0] == "denn"
        fronted = index is not None and not after_denn and rng.random() < 0.4
        pronoun = self.coreferent(host.subj) if rng.random() < 0.4 else None
        clause = self.clause(host.level + 1, subj=pronoun)
        added = 1 + count_words(en_clause(clause))
        if fronted and pronoun:  # the noun comes first: "Weil der Hund müde ist, schläft er."
            clause.subj, host.subj = host.subj, clause.subj
        host.sub = SubClause(rng.choice(SUBORDINATORS[self.tense]), clause, fronted)
        return added

    def grow_coordinate(self) -> int:
        if len(self.units) >= 3:
            return 0
        conj = self.rng.choices(COORDINATORS, (5, 3, 1))[0]
        pronoun = self.coreferent(self.units[-1].subj) if self.rng.random() < 0.35 else None
        clause = self.clause(0, subj=pronoun)
        self.units.append(clause)
        self.conjs.append(conj)
        return 1 + count_words(en_clause(clause))

    def grow_partner(self) -> int:
        if not self.args:
            return 0
        np = self.rng.choice(self.args)
        noun = self.rng.choice(nouns_for(np.kind))
        if np.partner or np.rel or np.mod or np.referenced or noun is np.noun:
            return 0
        np.partner = self.common_noun(noun, np.level, np.nest, simple=True)
        return 1 + count_words(en_core(np.partner))

    def choose_front(self, c: Clause) -> None:
        """Put an adverb or a time/place phrase in front of some main clauses (German V2)."""
        roll = self.rng.random()
        if c.sub and c.sub.fronted:
            return
        if c.adverb and c.adverb.front and roll < 0.35:
            c.front = "adv"
        elif roll > 0.75:
            movable = [pp for pp in c.adjuncts if pp.prep.use in ("loc", "time")]
            if movable:
                c.front, c.topic = "pp", movable[0]
