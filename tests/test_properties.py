"""Property tests (hypothesis) for what users rely on whatever they feed in.

- The recipe loader, given any text, any YAML document or any `--set`, returns a Recipe or
  raises RecipeError (one paragraph, exit code 2 in the CLI); never anything else.
- The batch sampler hands out every example exactly once per epoch for any lengths and budget,
  and a stream resumed from any position equals the uninterrupted one.
(Translation's count-and-order property lives in test_translate.py, next to its model.)
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmtkit.data.batching import BatchSampler
from nmtkit.recipe import Recipe, RecipeError, load_recipe, parse_recipe

# ------------------------------------------------------------------------------------ recipes

VALID = """\
name: p
data:
  source: {synthetic: {train: 100, valid: 10}}
tokenizer: {vocab_size: 100}
model: {hidden_size: 32, embed_size: 16, attention: bahdanau}
train: {max_steps: 10}
"""
KEYS = sorted(
    {"name", "run_dir", "data_dir", "data", "source", "synthetic", "files", "train", "valid"}
    | {"test", "src", "tgt", "clean", "tokenizer", "vocab_size", "model", "cell", "attention"}
    | {"hidden_size", "attention_heads", "bidirectional", "input_feeding", "decode", "evaluate"}
    | {"buckets", "early_stopping", "patience", "lr", "max_time", "precision", "seed", "hf"}
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["lstm", "gru", "bahdanau", "luong_dot", "multihead", "8m", "fp16", "auto"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5
        ),
    ),
    max_leaves=25,
)
YAML_CHARACTERS = st.sampled_from(list("{}[]:,-!&*|>'\"#%@` \n\tabn01.?"))  # syntax-heavy text
dotted = st.lists(st.sampled_from(KEYS), min_size=1, max_size=4).map(".".join)


def _loads_or_refuses(call: Any) -> None:
    """`call()` gives a Recipe or a RecipeError with a one-line message; nothing else."""
    try:
        recipe = call()
    except RecipeError as exc:
        assert str(exc) and "\n" not in " ".join(str(exc).split())
        return
    assert isinstance(recipe, Recipe)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=300), st.text(YAML_CHARACTERS, max_size=200)))
def test_any_text_is_a_recipe_or_a_recipe_error(text: str) -> None:
    _loads_or_refuses(lambda: parse_recipe(text, "fuzz.yaml"))


@settings(max_examples=300, deadline=None)
@given(document=st.one_of(documents, st.dictionaries(st.sampled_from(KEYS), documents, max_size=6)))
def test_any_yaml_document_is_a_recipe_or_a_recipe_error(document: Any) -> None:
    _loads_or_refuses(lambda: parse_recipe(yaml.safe_dump(document), "fuzz.yaml"))


@settings(max_examples=300, deadline=None)
@given(
    overrides=st.lists(
        st.one_of(
            st.builds(lambda k, v: f"{k}={v}", dotted, st.text(max_size=12)),
            st.builds(lambda k, v: f"{k}={yaml.safe_dump(v).strip()}", dotted, documents),
            st.text(max_size=20),
        ),
        max_size=4,
    )
)
def test_any_override_of_a_valid_recipe_is_a_recipe_or_a_recipe_error(overrides: list[str]) -> None:
    _loads_or_refuses(lambda: parse_recipe(VALID, "fuzz.yaml", overrides))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200))
def test_any_bytes_on_disk_are_a_recipe_or_a_recipe_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    _loads_or_refuses(lambda: load_recipe(path))


# ----------------------------------------------------------------------------------- batching

length_lists = st.lists(st.integers(0, 300), min_size=1, max_size=200)


@settings(max_examples=80, deadline=None)
@given(src=length_lists, data=st.data(), budget=st.integers(1, 2000), seed=st.integers(0, 2**32))
def test_sampler_yields_every_example_once_per_epoch(
    src: list[int], data: st.DataObject, budget: int, seed: int
) -> None:
    tgt = data.draw(st.lists(st.integers(0, 300), min_size=len(src), max_size=len(src)))
    sampler = BatchSampler(np.array(src), np.array(tgt), batch_tokens=budget, seed=seed)
    stream = iter(sampler)
    for epoch in (1, 2):
        per_epoch = sampler.batches_per_epoch()
        seen = np.concatenate([next(stream) for _ in range(per_epoch)])
        assert sorted(seen.tolist()) == list(range(len(src))), epoch
        assert sampler.epochs_done() == epoch


@settings(max_examples=80, deadline=None)
@given(
    src=length_lists,
    data=st.data(),
    budget=st.integers(1, 2000),
    seed=st.integers(0, 2**32),
    cut=st.integers(0, 400),
)
def test_sampler_resumed_anywhere_equals_uninterrupted(
    src: list[int], data: st.DataObject, budget: int, seed: int, cut: int
) -> None:
    tgt = np.array(data.draw(st.lists(st.integers(0, 300), min_size=len(src), max_size=len(src))))
    lens = np.array(src)

    def sampler() -> BatchSampler:
        return BatchSampler(lens, tgt, batch_tokens=budget, seed=seed)

    expected = [b.tolist() for b in itertools.islice(sampler(), cut + 30)]
    first = sampler()
    head = [b.tolist() for b in itertools.islice(first, cut)]  # may cross epoch boundaries
    resumed = sampler()
    resumed.load_state_dict(first.state_dict())
    assert head + [b.tolist() for b in itertools.islice(resumed, 30)] == expected
