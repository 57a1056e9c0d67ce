"""The layer-normalised cells: against their equations, their initialisation, and their stacks'
lengths handling (padding never reaches the recurrence)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from nmtkit.models.cells import LoopRNN
from nmtkit.models.layernorm import LayerNormGRU, LayerNormGRUCell, LayerNormLSTM, LayerNormLSTMCell

STACKS = [LayerNormLSTM, LayerNormGRU]


def layer_norm(z: Tensor, norm: torch.nn.LayerNorm) -> Tensor:
    """LN(z) written out: gain * (z - mean) / sqrt(var + eps) + bias, over the last dimension."""
    mean = z.mean(-1, keepdim=True)
    var = z.var(-1, unbiased=False, keepdim=True)
    return norm.weight * (z - mean) / torch.sqrt(var + norm.eps) + norm.bias


def randomise_norms(module: torch.nn.Module) -> None:
    """Gains and biases away from 1 / 0, so that the equations test them too."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.startswith("ln_"):
                param.uniform_(0.5, 1.5)


def test_lstm_cell_follows_the_equations() -> None:
    torch.manual_seed(0)
    cell = LayerNormLSTMCell(5, 4)
    randomise_norms(cell)
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    h_t, c_t = cell(x, (h, c))

    gates = (
        layer_norm(x @ cell.weight_ih.T, cell.ln_ih)
        + layer_norm(h @ cell.weight_hh.T, cell.ln_hh)
        + cell.bias
    )
    i, f, g, o = gates.chunk(4, dim=-1)
    c_expected = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_expected = torch.sigmoid(o) * torch.tanh(layer_norm(c_expected, cell.ln_cell))
    torch.testing.assert_close(c_t, c_expected)
    torch.testing.assert_close(h_t, h_expected)


def test_gru_cell_follows_the_equations() -> None:
    torch.manual_seed(0)
    cell = LayerNormGRUCell(5, 4)
    randomise_norms(cell)
    x, h = torch.randn(3, 5), torch.randn(3, 4)
    h_t = cell(x, h)

    r_x, z_x, n_x = layer_norm(x @ cell.weight_ih.T, cell.ln_ih).chunk(3, dim=-1)
    r_h, z_h, n_h = layer_norm(h @ cell.weight_hh.T, cell.ln_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(r_x + r_h), torch.sigmoid(z_x + z_h)
    n = torch.tanh(n_x + r * n_h)
    torch.testing.assert_close(h_t, (1 - z) * n + z * h)


def test_gru_cell_without_norms_is_torchs_gru_cell() -> None:
    """With the normalisations taken out the cell is nn.GRUCell (biases zero): the same gate
    order and the reset gate inside the candidate's recurrent term."""
    torch.manual_seed(0)
    cell = LayerNormGRUCell(5, 4)
    randomise_norms(cell)
    gru = torch.nn.GRUCell(5, 4)
    x, h = torch.randn(3, 5), torch.randn(3, 4)
    identity = torch.nn.Identity()
    cell.ln_ih, cell.ln_hh = identity, identity  # type: ignore[assignment]
    with torch.no_grad():
        gru.weight_ih.copy_(cell.weight_ih)
        gru.weight_hh.copy_(cell.weight_hh)
        gru.bias_ih.zero_()
        gru.bias_hh.zero_()
    torch.testing.assert_close(cell(x, h), gru(x, h))


@pytest.mark.parametrize("cell_type", [LayerNormLSTMCell, LayerNormGRUCell])
def test_norm_gains_one_biases_zero_and_forget_bias_one(cell_type: type) -> None:
    cell = cell_type(5, 4)
    norms = {name: p for name, p in cell.named_parameters() if name.startswith("ln_")}
    assert norms, "the normalisations' parameters are named ln_*"
    for name, param in norms.items():
        expected = 1.0 if name.endswith("weight") else 0.0
        assert torch.all(param == expected), name
    if cell_type is LayerNormLSTMCell:
        assert torch.all(cell.bias[4:8] == 1) and torch.all(cell.bias[:4] == 0)


def test_input_projection_scale_does_not_matter() -> None:
    """Layer normalisation's point: scaling W (or the input) leaves the step unchanged."""
    torch.manual_seed(0)
    cell = LayerNormLSTMCell(5, 4)
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    h_t, c_t = cell(x, (h, c))
    with torch.no_grad():
        cell.weight_ih.mul_(7.0)
        cell.weight_hh.mul_(3.0)
    h_scaled, c_scaled = cell(x, (h, c))
    torch.testing.assert_close(h_scaled, h_t, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(c_scaled, c_t, atol=1e-4, rtol=1e-4)


def padded_inputs(lens: list[int], size: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(len(lens), max(lens), size, generator=gen)
    mask = torch.arange(max(lens))[None, :] < torch.tensor(lens)[:, None]
    return x * mask[..., None] + 50.0 * ~mask[..., None], torch.tensor(lens)  # loud padding


def finals(state: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("stack", STACKS)
def test_sentence_alone_equals_sentence_in_a_padded_batch(
    stack: type[LoopRNN], bidirectional: bool
) -> None:
    torch.manual_seed(0)
    rnn = stack(5, 4, num_layers=2, bidirectional=bidirectional)
    x, lens = padded_inputs([3, 6, 5], 5)
    out, state = rnn(x, lengths=lens)
    alone, state_alone = rnn(x[:1, :3], lengths=lens[:1])
    torch.testing.assert_close(out[:1, :3], alone)
    for batched, single in zip(finals(state), finals(state_alone), strict=True):
        assert batched.shape == (2 * (1 + bidirectional), 3, 4)
        torch.testing.assert_close(batched[:, :1], single)
    assert torch.all(out[0, 3:] == 0)
    # the forward direction's final h is its output at the last real token
    h_n = finals(state)[0]
    top = h_n[-2] if bidirectional else h_n[-1]
    torch.testing.assert_close(top, out[torch.arange(3), lens - 1, :4])
    if bidirectional:  # the backward direction ends at the first token
        torch.testing.assert_close(h_n[-1], out[:, 0, 4:])


@pytest.mark.parametrize("stack", STACKS)
def test_stepping_with_the_state_equals_the_whole_sequence(stack: type[LoopRNN]) -> None:
    torch.manual_seed(0)
    rnn = stack(5, 4, num_layers=2)
    x = torch.randn(2, 3, 5)
    zeros = torch.randn(2, 2, 4)
    state: Tensor | tuple[Tensor, Tensor] = (zeros, torch.randn(2, 2, 4)) if rnn.has_cell else zeros
    out, final = rnn(x, state)
    for t in range(3):
        step_out, state = rnn(x[:, t : t + 1], state)
        torch.testing.assert_close(step_out[:, 0], out[:, t])
    for a, b in zip(finals(state), finals(final), strict=True):
        torch.testing.assert_close(a, b)


def test_gru_stack_has_no_cell_state_and_gradients_flow() -> None:
    torch.manual_seed(0)
    rnn = LayerNormGRU(5, 4, num_layers=2, bidirectional=True, dropout=0.2)
    x, lens = padded_inputs([4, 2], 5)
    out, h_n = rnn(x, lengths=lens)
    assert isinstance(h_n, Tensor) and h_n.shape == (4, 2, 4)
    (out.pow(2).sum() + h_n.sum()).backward()
    for name, param in rnn.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
