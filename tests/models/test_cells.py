"""The peephole LSTM: the cell against its equations, the layer stack against nn.LSTM, and
variable lengths that never let padding in."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmtkit.models.cells import PeepholeLSTM, PeepholeLSTMCell


def test_cell_follows_the_peephole_equations() -> None:
    torch.manual_seed(0)
    cell = PeepholeLSTMCell(5, 4)
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    h_t, c_t = cell(x, (h, c))

    W = dict(zip("ifgo", cell.weight_ih.chunk(4), strict=True))
    U = dict(zip("ifgo", cell.weight_hh.chunk(4), strict=True))
    b = dict(zip("ifgo", cell.bias.chunk(4), strict=True))
    p = dict(zip("ifo", cell.peephole, strict=True))
    i = torch.sigmoid(x @ W["i"].T + h @ U["i"].T + p["i"] * c + b["i"])
    f = torch.sigmoid(x @ W["f"].T + h @ U["f"].T + p["f"] * c + b["f"])
    g = torch.tanh(x @ W["g"].T + h @ U["g"].T + b["g"])
    c_expected = f * c + i * g
    o = torch.sigmoid(x @ W["o"].T + h @ U["o"].T + p["o"] * c_expected + b["o"])
    h_expected = o * torch.tanh(c_expected)

    torch.testing.assert_close(c_t, c_expected)
    torch.testing.assert_close(h_t, h_expected)


def test_peepholes_matter() -> None:
    torch.manual_seed(0)
    cell = PeepholeLSTMCell(5, 4)
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    h_t, _ = cell(x, (h, c))
    with torch.no_grad():
        cell.peephole.zero_()
    assert not torch.allclose(h_t, cell(x, (h, c))[0])


def test_forget_gate_bias_starts_at_one() -> None:
    cell = PeepholeLSTMCell(5, 4)
    assert torch.all(cell.bias[4:8] == 1)


def lstm_twin(peephole: PeepholeLSTM) -> nn.LSTM:
    """An nn.LSTM with the same weights (peepholes zeroed in `peephole`)."""
    lstm = nn.LSTM(
        peephole.cells[0].input_size,
        peephole.hidden_size,
        peephole.num_layers,
        batch_first=True,
        bidirectional=peephole.directions == 2,
    )
    with torch.no_grad():
        for k, cell in enumerate(peephole.cells):
            assert isinstance(cell, PeepholeLSTMCell)
            cell.peephole.zero_()
            suffix = f"l{k // peephole.directions}" + (
                "_reverse" if k % 2 and peephole.directions == 2 else ""
            )
            getattr(lstm, f"weight_ih_{suffix}").copy_(cell.weight_ih)
            getattr(lstm, f"weight_hh_{suffix}").copy_(cell.weight_hh)
            getattr(lstm, f"bias_ih_{suffix}").copy_(cell.bias)
            getattr(lstm, f"bias_hh_{suffix}").zero_()
    return lstm


def padded_inputs(lens: list[int], size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lens), max(lens), size, generator=gen)
    mask = torch.arange(max(lens))[None, :] < torch.tensor(lens)[:, None]
    return x * mask[..., None] + 50.0 * ~mask[..., None], torch.tensor(lens)  # loud padding


@pytest.mark.parametrize("bidirectional", [False, True])
def test_stack_without_peepholes_equals_packed_nn_lstm(bidirectional: bool) -> None:
    torch.manual_seed(0)
    peephole = PeepholeLSTM(5, 4, num_layers=2, bidirectional=bidirectional)
    lstm = lstm_twin(peephole)
    x, lens = padded_inputs([6, 2, 4], 5)
    out, (h_n, c_n) = peephole(x, lengths=lens)
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    packed_out, (h_ref, c_ref) = lstm(packed)
    out_ref, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=6)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(h_n, h_ref)
    torch.testing.assert_close(c_n, c_ref)


def test_bidirectional_outputs_ignore_padding() -> None:
    torch.manual_seed(0)
    rnn = PeepholeLSTM(5, 4, num_layers=2, bidirectional=True)
    x, lens = padded_inputs([3, 6, 5], 5)
    out, (h_n, c_n) = rnn(x, lengths=lens)
    alone, (h_alone, c_alone) = rnn(x[:1, :3], lengths=lens[:1])
    torch.testing.assert_close(out[:1, :3], alone)
    torch.testing.assert_close(h_n[:, :1], h_alone)
    torch.testing.assert_close(c_n[:, :1], c_alone)
    assert torch.all(out[0, 3:] == 0)
    # the backward direction ends at the first token, having started at the last real one
    torch.testing.assert_close(h_n[-1], out[:, 0, 4:])
    torch.testing.assert_close(h_n[-2], out[torch.arange(3), lens - 1, :4])


def test_no_lengths_means_full_lengths() -> None:
    torch.manual_seed(0)
    rnn = PeepholeLSTM(5, 4, bidirectional=True)
    x = torch.randn(2, 4, 5)
    out, (h_n, _) = rnn(x)
    out_full, (h_full, _) = rnn(x, lengths=torch.tensor([4, 4]))
    torch.testing.assert_close(out, out_full)
    torch.testing.assert_close(h_n, h_full)


def test_initial_state_is_used() -> None:
    torch.manual_seed(0)
    rnn = PeepholeLSTM(5, 4, num_layers=2)
    x = torch.randn(2, 3, 5)
    h0, c0 = torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    out, _ = rnn(x, (h0, c0))
    # stepping one token at a time with the state carried over gives the same outputs
    state = (h0, c0)
    for t in range(3):
        step_out, state = rnn(x[:, t : t + 1], state)
        torch.testing.assert_close(step_out[:, 0], out[:, t])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_by_steps_equals_packed_lstm(bidirectional: bool, layers: int) -> None:
    """The CPU path computes exactly what nn.LSTM over a packed batch computes, gradients too."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from nmtkit.models.cells import lstm_by_steps

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(7, 5, layers, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(4, 6, 7, requires_grad=True)
    lens = torch.tensor([3, 6, 1, 6])
    directions = 2 if bidirectional else 1
    hx = (torch.randn(layers * directions, 4, 5), torch.randn(layers * directions, 4, 5))
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    expected, (h1, c1) = lstm(packed, hx)
    expected, _ = pad_packed_sequence(expected, batch_first=True, total_length=6)
    out, (h2, c2) = lstm_by_steps(lstm, x, lens, hx)
    params = [x, *lstm.parameters()]
    g1 = torch.autograd.grad(expected.pow(2).sum() + h1.sum() + c1.sum(), params)
    g2 = torch.autograd.grad(out.pow(2).sum() + h2.sum() + c2.sum(), params)
    for a, b in [(expected, out), (h1, h2), (c1, c2), *zip(g1, g2, strict=True)]:
        assert torch.allclose(a, b, atol=1e-6)
