"""Bridges: the decoder's initial recurrent state, computed from the encoder output.

    bridge = make_bridge("bridge", hidden_size=256, num_layers=2, has_cell=True)
    state = bridge(enc)        # RNNState(hidden [2, B, 256], cell [2, B, 256])

- `final`:  the encoder's final h (and c), directions concatenated, per layer. With fewer decoder
            layers than encoder layers the top ones are taken; with more, the top one is repeated.
- `bridge`: a learned tanh(W x + b) of those final states, one Linear for h, one for c.
- `mean`:   h = tanh(W mean_j(k_j) + b) for every decoder layer, the masked mean over the
            encoder states; c starts at zeros.
- `zeros`:  h = c = 0.

GRU states have no c (`has_cell=False`): `cell` is None.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmtkit.models.encoder import EncoderOutput
from nmtkit.models.rnn import RNNState
from nmtkit.recipe import InitKind


class Bridge(nn.Module):
    """Base class: `forward(enc) -> RNNState` with [num_layers, B, hidden_size] tensors."""

    def __init__(self, hidden_size: int, num_layers: int, *, has_cell: bool) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.has_cell = has_cell

    def forward(self, enc: EncoderOutput) -> RNNState:
        raise NotImplementedError

    def _final(self, enc: EncoderOutput) -> RNNState:
        """The encoder's final states, cut or extended to `num_layers` layers."""
        cell = None
        if self.has_cell:
            if enc.cell is None:
                raise ValueError("an LSTM decoder needs the encoder's final cell state")
            cell = _match_layers(enc.cell, self.num_layers)
        return RNNState(_match_layers(enc.hidden, self.num_layers), cell)

    def _zeros(self, enc: EncoderOutput) -> Tensor:
        batch = enc.states.size(0)
        return enc.states.new_zeros(self.num_layers, batch, self.hidden_size)


class FinalStateBridge(Bridge):
    """Initial state = the encoder's final state (per layer, see the module docstring)."""

    def forward(self, enc: EncoderOutput) -> RNNState:
        return self._final(enc)


class LinearBridge(Bridge):
    """Initial state = tanh(W_h h_enc + b_h), tanh(W_c c_enc + b_c) of the final states."""

    def __init__(self, hidden_size: int, num_layers: int, *, has_cell: bool) -> None:
        super().__init__(hidden_size, num_layers, has_cell=has_cell)
        self.hidden_proj = nn.Linear(hidden_size, hidden_size)
        self.cell_proj = nn.Linear(hidden_size, hidden_size) if has_cell else None

    def forward(self, enc: EncoderOutput) -> RNNState:
        final = self._final(enc)
        hidden = torch.tanh(self.hidden_proj(final.hidden))  # [L, B, H]
        if self.cell_proj is None or final.cell is None:
            return RNNState(hidden, None)
        return RNNState(hidden, torch.tanh(self.cell_proj(final.cell)))


class MeanBridge(Bridge):
    """Initial h = tanh(W mean_j(k_j) + b) at every layer (masked mean); c = 0."""

    def __init__(self, hidden_size: int, num_layers: int, *, has_cell: bool) -> None:
        super().__init__(hidden_size, num_layers, has_cell=has_cell)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, enc: EncoderOutput) -> RNNState:
        mask = enc.mask.unsqueeze(-1).to(enc.states.dtype)  # [B, S, 1]
        mean = (enc.states * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # [B, H]
        hidden = torch.tanh(self.proj(mean))  # [B, H]
        hidden = hidden.unsqueeze(0).repeat(self.num_layers, 1, 1)  # [L, B, H]
        return RNNState(hidden, self._zeros(enc) if self.has_cell else None)


class ZeroBridge(Bridge):
    """Initial h = c = 0."""

    def forward(self, enc: EncoderOutput) -> RNNState:
        return RNNState(self._zeros(enc), self._zeros(enc) if self.has_cell else None)


def make_bridge(kind: InitKind, hidden_size: int, num_layers: int, *, has_cell: bool) -> Bridge:
    """The bridge for a recipe's `model.init`."""
    bridges: dict[str, type[Bridge]] = {
        "final": FinalStateBridge,
        "bridge": LinearBridge,
        "mean": MeanBridge,
        "zeros": ZeroBridge,
    }
    if kind not in bridges:
        raise ValueError(f"unknown init {kind!r}; choose from {', '.join(bridges)}")
    return bridges[kind](hidden_size, num_layers, has_cell=has_cell)


def _match_layers(states: Tensor, num_layers: int) -> Tensor:
    """[L_enc, B, H] -> [num_layers, B, H]: the top layers, or the top layer repeated."""
    have = states.size(0)
    if have >= num_layers:
        return states[have - num_layers :]
    extra = states[-1:].expand(num_layers - have, -1, -1)
    return torch.cat([states, extra], dim=0)
