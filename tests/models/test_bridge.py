"""Bridges: the decoder's initial state from the encoder output."""

from __future__ import annotations

import pytest
import torch

from nmtkit.models.bridge import LinearBridge, MeanBridge, make_bridge
from nmtkit.models.encoder import EncoderOutput
from nmtkit.recipe import InitKind

H = 6


def encoder_output(lens: list[int], layers: int = 2, cell: bool = True) -> EncoderOutput:
    torch.manual_seed(0)
    lengths = torch.tensor(lens)
    mask = torch.arange(max(lens))[None, :] < lengths[:, None]
    states = torch.randn(len(lens), max(lens), H) * mask[..., None]
    hidden = torch.randn(layers, len(lens), H)
    return EncoderOutput(states, mask, lengths, hidden, torch.randn_like(hidden) if cell else None)


@pytest.mark.parametrize("kind", ["final", "bridge", "mean", "zeros"])
@pytest.mark.parametrize("has_cell", [True, False])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_shapes(kind: InitKind, has_cell: bool, layers: int) -> None:
    bridge = make_bridge(kind, H, layers, has_cell=has_cell)
    state = bridge(encoder_output([4, 2], cell=has_cell))
    assert state.hidden.shape == (layers, 2, H)
    assert (state.cell is None) == (not has_cell)
    if state.cell is not None:
        assert state.cell.shape == (layers, 2, H)


def test_final_takes_top_layers_or_repeats_the_top_one() -> None:
    enc = encoder_output([4, 2], layers=2)
    assert enc.cell is not None
    one = make_bridge("final", H, 1, has_cell=True)(enc)
    torch.testing.assert_close(one.hidden, enc.hidden[1:])
    three = make_bridge("final", H, 3, has_cell=True)(enc)
    torch.testing.assert_close(three.hidden, enc.hidden[[0, 1, 1]])
    assert three.cell is not None
    torch.testing.assert_close(three.cell, enc.cell[[0, 1, 1]])


def test_mean_is_a_masked_mean() -> None:
    enc = encoder_output([4, 2])
    bridge = MeanBridge(H, 2, has_cell=True)
    state = bridge(enc)
    noisy = enc._replace(states=torch.where(enc.mask[..., None], enc.states, 7.0))
    torch.testing.assert_close(bridge(noisy).hidden, state.hidden)
    mean = enc.states[1, :2].mean(0)
    torch.testing.assert_close(state.hidden[0, 1], torch.tanh(bridge.proj(mean)))
    torch.testing.assert_close(state.hidden[0], state.hidden[1])
    assert state.cell is not None and torch.all(state.cell == 0)


def test_learned_bridge_is_tanh_of_a_linear_map() -> None:
    enc = encoder_output([3, 3])
    bridge = LinearBridge(H, 2, has_cell=True)
    state = bridge(enc)
    torch.testing.assert_close(state.hidden, torch.tanh(bridge.hidden_proj(enc.hidden)))
    assert state.cell is not None and enc.cell is not None
    assert bridge.cell_proj is not None
    torch.testing.assert_close(state.cell, torch.tanh(bridge.cell_proj(enc.cell)))


def test_zeros_and_unknown() -> None:
    state = make_bridge("zeros", H, 2, has_cell=True)(encoder_output([3]))
    assert torch.all(state.hidden == 0)
    with pytest.raises(ValueError, match="unknown init"):
        make_bridge("random", H, 1, has_cell=True)  # type: ignore[arg-type]
