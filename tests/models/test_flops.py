"""The analytic FLOP counts behind the MFU figures equal what torch's FlopCounterMode counts
on batches without padding, for every attention, input feeding, cell and initial state.

FlopCounterMode does not see inside the fused `nn.LSTM`/`nn.GRU` calls of the decoder's fast
path, so the decoder runs its step loop here (the same matrix products, one step at a time).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nmtkit.models import build_model
from nmtkit.models.flops import FlopCounts
from nmtkit.recipe import ModelConfig
from tests.models.test_models import GRID, VOCAB, grid_model

COMBOS = list(enumerate(GRID))[::5]  # 58 of the 288 models of test_models


@pytest.mark.parametrize(("index", "combo"), COMBOS, ids=["-".join(c) for _, c in COMBOS])
def test_counts_equal_the_flop_counter(index: int, combo: tuple[str, str, str, str]) -> None:
    model = grid_model(index, combo).eval()
    batch, length, steps = 3, 5, 4
    src = torch.randint(4, VOCAB, (batch, length))
    tgt = torch.randint(4, VOCAB, (batch, steps))
    with FlopCounterMode(display=False) as counter:
        enc = model.encode(src, torch.full((batch,), length))
        model.decoder(tgt, enc, fast_path=False)
    expected = FlopCounts.of(model).forward(
        src_tokens=batch * length,
        tgt_tokens=batch * steps,
        pairs=batch * length * steps,
        sentences=batch,
    )
    assert counter.get_total_flops() == expected


def test_demo_model_counts() -> None:
    """The demo model's figures by hand: 1-layer biLSTM 256 (128 per direction), LSTM 256
    decoder, Luong general, no feeding, bridge, output tied to a 3,000-piece vocabulary."""
    config = ModelConfig(
        embed_size=256,
        hidden_size=256,
        encoder_layers=1,
        decoder_layers=1,
        attention="luong_general",
        input_feeding="none",
        init="bridge",
    )
    counts = FlopCounts.of(build_model(config, 3000, 3000))
    encoder = 2 * 4 * 128 * (256 + 128)  # two directions, W_ih and W_hh
    assert counts.per_src_token == 2 * (encoder + 256 * 256)  # + the key projection
    decoder = 4 * 256 * (256 + 256) + 256 * 512 + 256 * 3000  # RNN, W_c [c; h], output
    assert counts.per_tgt_token == 2 * decoder
    assert counts.per_pair == 2 * 2 * 256
    assert counts.per_sentence == 2 * 2 * 256 * 256
