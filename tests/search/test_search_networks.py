"""Greedy and beam search on tiny (untrained) networks of every cell: beam 1 equals greedy, and
a sentence's result does not depend on its batch companions."""

from __future__ import annotations

import pytest
import torch

from nmtkit.data.tokenizer import BOS_ID, PAD_ID
from nmtkit.search.beam import beam_search
from nmtkit.search.greedy import greedy_hypotheses
from tests.models.test_models import CELLS, random_batch, tiny_model


@pytest.mark.parametrize("cell", CELLS)
def test_beam_one_equals_greedy_and_batches_do_not_matter(cell: str) -> None:
    attention, feeding = ("bahdanau", "concat") if "gru" in cell else ("luong_general", "none")
    model = tiny_model(
        cell=cell, attention=attention, input_feeding=feeding, encoder_layers=2, decoder_layers=2
    ).eval()
    with torch.no_grad():  # as after training: padding and BOS are never predicted
        model.decoder.output.proj.bias[[PAD_ID, BOS_ID]] = -1e4
    src, src_lens = random_batch([5, 2, 4])
    greedy = greedy_hypotheses(model, src, src_lens, max_len_ratio=1.5)
    beam = beam_search(model, src, src_lens, beam_size=1, alpha=0.0, max_len_ratio=1.5)
    [beam_one] = zip(*beam, strict=True)
    assert [h.tokens for h in beam_one] == [h.tokens for h in greedy]
    assert [h.log_prob for h in beam_one] == pytest.approx([h.log_prob for h in greedy], abs=1e-4)
    beams = beam_search(model, src, src_lens, beam_size=3, nbest=2, max_len_ratio=1.5)
    alone = beam_search(model, src[1:2, :2], src_lens[1:2], beam_size=3, nbest=2, max_len_ratio=1.5)
    assert [h.tokens for h in beams[1]] == [h.tokens for h in alone[0]]
    assert all(torch.isfinite(torch.tensor(h.score)) for hyps in beams for h in hyps)
