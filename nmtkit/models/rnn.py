"""One stack of recurrent layers, the recurrence of both the encoder and the decoder.

    rnn = StackedRNN("lstm", input_size=256, hidden_size=512, num_layers=2, bidirectional=True)
    out = rnn(emb, lengths=src_lens)       # out.outputs [B, S, 512], out.state.hidden [2, B, 512]

- `lstm` / `gru` run through the fused `nn.LSTM` / `nn.GRU` (cuDNN on CUDA); with `lengths` the
  batch is packed (`pack_padded_sequence(..., enforce_sorted=False)`), so padding never reaches
  the recurrence and outputs are zeros at padded positions.
- `peephole_lstm`, `layernorm_lstm` and `layernorm_gru` run through `cells.PeepholeLSTM`,
  `layernorm.LayerNormLSTM` / `LayerNormGRU` (Python step loops, `cells.LoopRNN`), which take
  `lengths` directly. `layernorm_gru`, like `gru`, has no cell state (`has_cell_state`).
- `bidirectional`: each direction has hidden_size // 2 units, so the outputs always have
  hidden_size features; final states come back with the two directions concatenated,
  [L, B, hidden_size], the layout the decoder and the bridges use.
- Dropout between layers. `residual`: x_{l+1} = rnn_l(dropout(x_l)) + x_l for l >= 1 (layer 0
  changes the size, so it has no shortcut); this needs one module per layer, while without
  residual connections one multi-layer fused module does the whole stack (faster).
- `variational`: the dropout between layers draws one mask per sequence, shared by all time
  steps ([B, 1, H]; `layer_masks`). The fused multi-layer nn.LSTM / nn.GRU can only drop out
  per position, so with more than one layer this also runs one module per layer, as
  `residual` does (slower on cuDNN: one kernel call per layer instead of one for the stack).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmtkit.models.cells import LoopRNN, PeepholeLSTM, lstm_by_steps
from nmtkit.models.dropout import Dropout, apply_mask, dropout
from nmtkit.models.layernorm import LayerNormGRU, LayerNormLSTM
from nmtkit.recipe import CellKind

_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
RecurrentModule = nn.LSTM | nn.GRU | LoopRNN
LayerMasks = tuple[Tensor, ...]  # variational dropout: one [B, H] mask per layer boundary


def has_cell_state(cell: CellKind) -> bool:
    """Whether the cell carries a memory cell c besides h (the LSTMs do, the GRUs do not)."""
    return cell not in ("gru", "layernorm_gru")


class RNNState(NamedTuple):
    """Recurrent state of a stack, directions concatenated."""

    hidden: Tensor  # [L, B, H]
    cell: Tensor | None  # [L, B, H]; None for GRU


class RNNOutput(NamedTuple):
    outputs: Tensor  # [B, T, H] top layer, zeros past each length
    state: RNNState  # final state of every layer


class StackedRNN(nn.Module):
    """`num_layers` recurrent layers of one cell type (see the module docstring)."""

    def __init__(
        self,
        cell: CellKind,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        residual: bool = False,
        variational: bool = False,
    ) -> None:
        super().__init__()
        self.directions = 2 if bidirectional else 1
        if hidden_size % self.directions:
            raise ValueError(f"hidden_size {hidden_size} must be even when bidirectional")
        self.hidden_size = hidden_size
        self.has_cell = has_cell_state(cell)
        self.residual = residual and num_layers > 1
        self.variational = variational
        per_direction = hidden_size // self.directions
        if self.residual or (variational and num_layers > 1):  # one module per layer
            sizes = [input_size] + [hidden_size] * (num_layers - 1)
            blocks = [_make_rnn(cell, size, per_direction, 1, bidirectional, 0.0) for size in sizes]
        else:
            blocks = [
                _make_rnn(cell, input_size, per_direction, num_layers, bidirectional, dropout)
            ]
        self.blocks = nn.ModuleList(blocks)
        self.layers_per_block = num_layers // len(blocks)
        self.dropout = Dropout(dropout, variational=variational)

    def forward(
        self,
        inputs: Tensor,
        lengths: Tensor | None = None,
        state: RNNState | None = None,
        *,
        masks: LayerMasks | None = None,
    ) -> RNNOutput:
        """inputs [B, T, I], lengths [B] (None: all T), state (default zeros) -> RNNOutput.
        `masks`: variational dropout's masks between layers (`layer_masks`); drawn here when
        None."""
        if masks is None:
            masks = self.layer_masks(inputs.size(0), inputs.device)
        x = inputs
        hiddens: list[Tensor] = []
        cells: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            hx = self._block_state(state, i)
            y, final = _run(block, self._between_layers(x, i, masks), lengths, hx)
            x = y + x if self.residual and i > 0 else y
            h_n, c_n = final if isinstance(final, tuple) else (final, None)
            hiddens.append(self._join_directions(h_n))
            if c_n is not None:
                cells.append(self._join_directions(c_n))
        hidden = hiddens[0] if len(hiddens) == 1 else torch.cat(hiddens)
        cell = None if not cells else cells[0] if len(cells) == 1 else torch.cat(cells)
        return RNNOutput(x, RNNState(hidden, cell))

    def layer_masks(self, batch: int, device: torch.device) -> LayerMasks | None:
        """Variational dropout between layers: one [B, H] mask per boundary between blocks,
        for whole sequences (a step loop draws them once and passes them to every `step`).
        None, drawing nothing, when not variational, in eval mode, p == 0 or one layer."""
        if not self._draws_layer_masks:
            return None
        masks = [self.dropout.draw_mask(batch, self.hidden_size, device) for _ in self.blocks[1:]]
        return tuple(m for m in masks if m is not None)

    @property
    def _draws_layer_masks(self) -> bool:
        p = self.dropout.p
        return self.variational and len(self.blocks) > 1 and self.training and p > 0.0

    def _between_layers(self, x: Tensor, block: int, masks: LayerMasks | None) -> Tensor:
        """The input of `block` from the previous block's output x: dropout (none before the
        first block; with `variational`, the given per-sequence mask)."""
        if block == 0:
            return x
        if self.variational:
            return x if masks is None else apply_mask(x, masks[block - 1])
        return self.dropout(x)

    def first_input_weights(self) -> tuple[Tensor, Tensor] | None:
        """(W_ih, b_ih) of the first layer when `step` can take its input split (see `step`'s
        `first_gates`): a unidirectional LSTM or GRU stack; None otherwise."""
        block = self.blocks[0]
        if self.directions != 1 or not isinstance(block, nn.LSTM | nn.GRU):
            return None
        weight, bias = block.weight_ih_l0, block.bias_ih_l0
        assert isinstance(weight, Tensor) and isinstance(bias, Tensor)
        return weight, bias

    def step(
        self,
        x: Tensor,
        state: RNNState,
        *,
        first_gates: Tensor | None = None,
        masks: LayerMasks | None = None,
    ) -> RNNOutput:
        """One time step of the stack: x [B, I] -> outputs [B, H] (top layer) and the new state.

        For unidirectional LSTM/GRU stacks this runs `torch.lstm_cell` / `torch.gru_cell` on the
        fused module's own weights: a decoder step costs a few matrix products instead of a
        whole fused-RNN call (whose per-call overhead, forward and backward, dominated the
        step loop on the CPU). Dropout between layers and residual connections are applied
        exactly as in `forward`, so a loop of `step` equals `forward` over the sequence.

        `first_gates` [B, G] (G = 4H for LSTM, 3H for GRU): the first layer's input projection
        of the leading input columns, already computed, bias b_ih included; x then holds only
        the remaining columns (it may be [B, 0]). The decoder uses it at inference with the
        embedding's share looked up from a table (`RNNDecoder._folded_embedding`).

        `masks` (variational dropout in training): the sequence's masks between layers, drawn
        once with `layer_masks` and passed to every step; required then.
        """
        if masks is None and self._draws_layer_masks:
            raise ValueError("a training step with variational dropout needs `layer_masks`")
        if self.directions != 1 or isinstance(self.blocks[0], LoopRNN):
            out = self(x.unsqueeze(1), state=state, masks=masks)
            return RNNOutput(out.outputs[:, 0], out.state)
        if first_gates is not None and self.first_input_weights() is None:
            raise ValueError("first_gates needs a unidirectional LSTM or GRU stack")
        hiddens: list[Tensor] = []
        cells: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            inputs = self._between_layers(x, i, masks)
            y = self._cell_steps(
                block, inputs, state, hiddens, cells, first_gates if i == 0 else None
            )
            x = y + x if self.residual and i > 0 else y
        cell = torch.stack(cells) if cells else None
        return RNNOutput(x, RNNState(torch.stack(hiddens), cell))

    def _cell_steps(
        self,
        block: nn.Module,
        x: Tensor,
        state: RNNState,
        hiddens: list[Tensor],
        cells: list[Tensor],
        first_gates: Tensor | None = None,
    ) -> Tensor:
        """Advance every layer of one fused block by one step; appends the new h (and c).
        `first_gates`: see `step` (used for the stack's first layer only)."""
        assert isinstance(block, nn.LSTM | nn.GRU)
        for k in range(block.num_layers):
            if k > 0:  # nn.LSTM / nn.GRU drop out every layer's output but the last
                x = dropout(x, block.dropout, self.training)
            layer = len(hiddens)
            weights = [getattr(block, f"{name}_l{k}") for name in _WEIGHT_NAMES]
            if layer == 0 and first_gates is not None:  # W_ih's remaining columns; b_ih in it
                weights[0] = weights[0][:, weights[0].size(1) - x.size(-1) :]
                weights[2] = first_gates
            if state.cell is not None:
                x, c = torch.lstm_cell(x, (state.hidden[layer], state.cell[layer]), *weights)
                cells.append(c)
            else:
                x = torch.gru_cell(x, state.hidden[layer], *weights)
            hiddens.append(x)
        return x

    def _block_state(self, state: RNNState | None, block: int) -> Tensor | tuple | None:
        """The slice of `state` for one block, in torch's [layers * D, B, H / D] layout."""
        if state is None:
            return None
        layers = slice(block * self.layers_per_block, (block + 1) * self.layers_per_block)
        hidden = self._split_directions(state.hidden[layers])
        if not self.has_cell:
            return hidden
        if state.cell is None:
            raise ValueError("an LSTM state needs a cell tensor")
        return hidden, self._split_directions(state.cell[layers])

    def _split_directions(self, x: Tensor) -> Tensor:
        """[L, B, D*Hd] -> [L*D, B, Hd] (torch's layout: layer-major, forward direction first)."""
        if self.directions == 1:
            return x.contiguous()
        layers, batch, size = x.shape
        half = size // 2
        return x.view(layers, batch, 2, half).transpose(1, 2).reshape(2 * layers, batch, half)

    def _join_directions(self, x: Tensor) -> Tensor:
        """[L*D, B, Hd] -> [L, B, D*Hd], the inverse of `_split_directions`."""
        if self.directions == 1:
            return x
        layers2, batch, half = x.shape
        return x.view(layers2 // 2, 2, batch, half).transpose(1, 2).reshape(-1, batch, 2 * half)


_LOOP_RNNS: dict[str, type[LoopRNN]] = {
    "peephole_lstm": PeepholeLSTM,
    "layernorm_lstm": LayerNormLSTM,
    "layernorm_gru": LayerNormGRU,
}


def _make_rnn(
    cell: CellKind, input_size: int, size: int, layers: int, bidirectional: bool, dropout: float
) -> RecurrentModule:
    dropout = dropout if layers > 1 else 0.0  # torch warns about dropout on a single layer
    if cell in _LOOP_RNNS:
        loop = _LOOP_RNNS[cell]
        return loop(input_size, size, layers, bidirectional=bidirectional, dropout=dropout)
    rnn_type = nn.LSTM if cell == "lstm" else nn.GRU
    return rnn_type(
        input_size, size, layers, batch_first=True, bidirectional=bidirectional, dropout=dropout
    )


def _run(
    block: nn.Module, x: Tensor, lengths: Tensor | None, hx: Tensor | tuple | None
) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
    """Run one block over [B, T, I]; returns outputs [B, T, D*Hd] and torch's final state."""
    if isinstance(block, LoopRNN):
        return block(x, hx, lengths=lengths)
    if lengths is None:
        return block(x, hx)
    if isinstance(block, nn.LSTM) and x.device.type == "cpu":
        state = hx if isinstance(hx, tuple) else None  # an LSTM's hx is (h0, c0) or None
        return lstm_by_steps(block, x, lengths, state)  # see its docstring: packing is slow here
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, final = block(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, final
