"""The encoder and its RNN stack: padding never matters, final states are where they should be,
residual connections add up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nmtkit.data.tokenizer import PAD_ID
from nmtkit.models.encoder import RNNEncoder
from nmtkit.models.rnn import RNNState, StackedRNN

CELLS = ["lstm", "gru", "peephole_lstm", "layernorm_lstm", "layernorm_gru"]


def make_encoder(cell: str, **options: object) -> RNNEncoder:
    torch.manual_seed(0)
    embed = nn.Embedding(20, 6, padding_idx=PAD_ID)
    defaults: dict = {"hidden_size": 8, "num_layers": 2, "bidirectional": True}
    return RNNEncoder(embed, cell=cell, **{**defaults, **options}).eval()  # type: ignore[arg-type]


def source(lens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    src = torch.full((len(lens), max(lens)), PAD_ID)
    for b, n in enumerate(lens):
        src[b, :n] = torch.randint(4, 20, (n,), generator=gen)
    return src, torch.tensor(lens)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_sentence_alone_equals_sentence_in_a_padded_batch(cell: str, residual: bool) -> None:
    encoder = make_encoder(cell, residual=residual, num_layers=3)
    src, lens = source([3, 6, 5])
    with torch.no_grad():
        batched = encoder(src, lens)
        alone = encoder(src[:1, :3], lens[:1])
    torch.testing.assert_close(batched.states[:1, :3], alone.states)
    torch.testing.assert_close(batched.hidden[:, :1], alone.hidden)
    if batched.cell is not None and alone.cell is not None:
        torch.testing.assert_close(batched.cell[:, :1], alone.cell)
    assert torch.all(batched.states[0, 3:] == 0)
    assert batched.mask.tolist()[0] == [True] * 3 + [False] * 3


@pytest.mark.parametrize("cell", CELLS)
def test_final_hidden_joins_both_directions(cell: str) -> None:
    encoder = make_encoder(cell)
    src, lens = source([3, 6, 5])
    with torch.no_grad():
        enc = encoder(src, lens)
    assert enc.states.shape == (3, 6, 8)
    assert enc.hidden.shape == (2, 3, 8)
    assert (enc.cell is None) == (cell in ("gru", "layernorm_gru"))
    # forward direction: state at the last real token; backward: state at the first token
    torch.testing.assert_close(enc.hidden[-1, :, :4], enc.states[torch.arange(3), lens - 1, :4])
    torch.testing.assert_close(enc.hidden[-1, :, 4:], enc.states[:, 0, 4:])


def test_unidirectional_encoder_has_full_size_states() -> None:
    encoder = make_encoder("gru", bidirectional=False, num_layers=1)
    src, lens = source([4, 2])
    enc = encoder(src, lens)
    assert enc.states.shape == (2, 4, 8) and enc.hidden.shape == (1, 2, 8)


def test_residual_stack_adds_each_layer_input() -> None:
    torch.manual_seed(0)
    rnn = StackedRNN("gru", 8, 8, num_layers=3, residual=True).eval()
    assert len(rnn.blocks) == 3
    assert len(StackedRNN("gru", 8, 8, num_layers=3).blocks) == 1
    x = torch.randn(2, 4, 8)
    first = rnn.blocks[0](x)[0]
    second = rnn.blocks[1](first)[0] + first
    third = rnn.blocks[2](second)[0] + second
    torch.testing.assert_close(rnn(x).outputs, third)


@pytest.mark.parametrize("cell", CELLS)
def test_state_layout_round_trips(cell: str) -> None:
    """A unidirectional stack run in two halves, the state carried over, equals one run."""
    torch.manual_seed(0)
    rnn = StackedRNN(cell, 5, 6, num_layers=2, residual=cell == "gru").eval()  # type: ignore[arg-type]
    x = torch.randn(2, 6, 5)
    whole = rnn(x)
    head = rnn(x[:, :2])
    tail = rnn(x[:, 2:], state=head.state)
    torch.testing.assert_close(torch.cat([head.outputs, tail.outputs], 1), whole.outputs)
    torch.testing.assert_close(tail.state.hidden, whole.state.hidden)
    assert isinstance(whole.state, RNNState)


def test_split_and_join_directions_are_inverse() -> None:
    rnn = StackedRNN("lstm", 5, 8, num_layers=2, bidirectional=True)
    state = torch.randn(2, 3, 8)
    torch.testing.assert_close(rnn._join_directions(rnn._split_directions(state)), state)
