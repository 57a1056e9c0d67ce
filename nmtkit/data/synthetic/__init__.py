"""The built-in English->German corpus generator (the `synthetic` data source).

`iter_synthetic` yields one split of a deterministic parallel corpus, `generate_pair` one pair
from a given RNG; `GENERATOR_VERSION` is part of the prepared-data fingerprint and changes
whenever the output does. Modules: `generator` (lengths and splits), `builder` (random sentence
trees) and `pools` (the lexicon indexes it draws from), `trees` (the tree classes), `grammar`
(English and German rendering), `morphology` (inflection), `lexicon` (entry types, loaded from
the package data file `lexicon.json`).
"""

from __future__ import annotations

from nmtkit.data.synthetic.generator import GENERATOR_VERSION, generate_pair, iter_synthetic
from nmtkit.data.synthetic.lexicon import lexicon_size

__all__ = ["GENERATOR_VERSION", "generate_pair", "iter_synthetic", "lexicon_size"]
