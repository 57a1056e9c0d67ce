"""Recurrent cells that torch does not ship, run in a Python step loop: the peephole LSTM
(Gers & Schmidhuber 2000) here, the layer-normalised LSTM and GRU in `layernorm.py`.

    cell = PeepholeLSTMCell(8, 16)
    h, c = cell(x, (h, c))                                  # one step: [B, 8] -> [B, 16]
    lstm = PeepholeLSTM(8, 16, num_layers=2, bidirectional=True, dropout=0.1)
    outputs, (h_n, c_n) = lstm(x, lengths=lens)             # [B, T, 8] -> [B, T, 32]

Every such cell is a `LoopCell` (the input projection of a whole sequence in one product, then
one recurrent step at a time), and every stack of them a `LoopRNN`, which mirrors
`nn.LSTM(batch_first=True)` / `nn.GRU` closely enough to stand in for them: the same output
layout, final states as [layers * directions, B, H] (layer-major, forward direction first;
(h_n, c_n) for cells with a memory cell, h_n alone otherwise) and dropout between layers.
Instead of a PackedSequence it takes `lengths`: past its length a sequence's state is frozen
and its outputs are zeros, and the backward direction starts at each sequence's own last real
token, so padding never reaches the recurrence.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmtkit.models.dropout import Dropout, dropout

LSTMStateTuple = tuple[Tensor, Tensor]  # (h, c), the layout nn.LSTM uses
CellState = tuple[Tensor, ...]  # (h, c) for a cell with a memory cell, (h,) otherwise


class LoopCell(nn.Module):
    """A recurrent cell that `LoopRNN` runs one step at a time. Subclasses set `has_cell` and
    fill in `project_input` (the part of a step that depends on x alone, computed once for a
    whole sequence) and `recur` (the rest of one step)."""

    has_cell: ClassVar[bool] = True  # the state is (h, c); False: (h,)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    def project_input(self, x: Tensor) -> Tensor:
        """[..., I] -> [..., G], the input's share of every gate."""
        raise NotImplementedError

    def recur(self, gates_x: Tensor, state: CellState) -> CellState:
        """One step given `project_input(x_t)` [B, G] and the state ([B, H] each)."""
        raise NotImplementedError


class PeepholeLSTMCell(LoopCell):
    """LSTM cell with peephole connections (Gers & Schmidhuber 2000; notation of Graves 2013):

        i_t = sigmoid(W_i x_t + U_i h_{t-1} + p_i ⊙ c_{t-1} + b_i)
        f_t = sigmoid(W_f x_t + U_f h_{t-1} + p_f ⊙ c_{t-1} + b_f)
        g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        o_t = sigmoid(W_o x_t + U_o h_{t-1} + p_o ⊙ c_t + b_o)
        h_t = o_t ⊙ tanh(c_t)

    The forget and input gates look at the previous cell c_{t-1}, the output gate at the new c_t.
    Parameters, gates in nn.LSTMCell's order (i, f, g, o):
    `weight_ih` = [W_i; W_f; W_g; W_o] (4H x I), `weight_hh` = [U_i; U_f; U_g; U_o] (4H x H),
    `bias` = [b_i; b_f; b_g; b_o] (4H), `peephole` = [p_i; p_f; p_o] (3 x H).

    Initialisation: everything U(-1/√H, 1/√H) like nn.LSTM, except the forget-gate bias b_f = 1
    (Jozefowicz et al. 2015), so that early in training the cell remembers by default.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.peephole = nn.Parameter(torch.empty(3, hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)
        with torch.no_grad():
            self.bias[self.hidden_size : 2 * self.hidden_size].fill_(1.0)

    def forward(self, x: Tensor, state: LSTMStateTuple) -> LSTMStateTuple:
        """One step: x [B, I], state (h [B, H], c [B, H]) -> (h_t, c_t)."""
        h_t, c_t = self.recur(self.project_input(x), state)
        return h_t, c_t

    def project_input(self, x: Tensor) -> Tensor:
        """W x + b for all four gates, [..., I] -> [..., 4H]; done once for a whole sequence."""
        return F.linear(x, self.weight_ih, self.bias)

    def recur(self, gates_x: Tensor, state: CellState) -> CellState:
        """The recurrent part of one step, given `project_input(x_t)` [B, 4H]."""
        h, c = state
        gates = gates_x + F.linear(h, self.weight_hh)  # [B, 4H]
        i, f, g, o = gates.chunk(4, dim=-1)  # each [B, H]
        p_i, p_f, p_o = self.peephole
        i = torch.sigmoid(i + p_i * c)
        f = torch.sigmoid(f + p_f * c)
        c_t = f * c + i * torch.tanh(g)
        o = torch.sigmoid(o + p_o * c_t)
        return o * torch.tanh(c_t), c_t


class LoopRNN(nn.Module):
    """A stack of `LoopCell` layers (the subclass's `cell_type`) with nn.LSTM's / nn.GRU's
    interface, batch first (see the module docstring).

    Layer l > 0 reads the previous layer's outputs (both directions concatenated) after dropout.
    The per-step loop runs in Python, so this is slower than the fused nn.LSTM; the input
    projections of a whole sequence are computed in one matrix product per layer and direction.
    """

    cell_type: ClassVar[type[LoopCell]]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.directions = 2 if bidirectional else 1
        self.has_cell = self.cell_type.has_cell
        self.cells = nn.ModuleList(
            self.cell_type(input_size if layer == 0 else hidden_size * self.directions, hidden_size)
            for layer in range(num_layers)
            for _ in range(self.directions)
        )
        self.dropout = Dropout(dropout)

    def forward(
        self,
        inputs: Tensor,
        hx: LSTMStateTuple | Tensor | None = None,
        lengths: Tensor | None = None,
    ) -> tuple[Tensor, LSTMStateTuple | Tensor]:
        """inputs [B, T, I], hx (h_0, c_0) (or h_0 without a memory cell) each [L*D, B, H]
        (default zeros), lengths [B] or None (all T) -> outputs [B, T, D*H] (zeros past each
        length), (h_n, c_n) (or h_n) each [L*D, B, H]."""
        batch, steps = inputs.shape[:2]
        initial = self._initial_state(hx, inputs)
        valid = None
        if lengths is not None:
            positions = torch.arange(steps, device=inputs.device)
            valid = positions[None, :] < lengths.to(inputs.device)[:, None]  # [B, T]
        reverse = None
        if self.directions == 2:
            reverse = _reverse_index(lengths, batch, steps, inputs.device)  # [B, T]
        finals: list[list[Tensor]] = [[] for _ in initial]  # per state tensor, per layer/dir
        layer_input = inputs
        for layer in range(self.num_layers):
            if layer > 0:
                layer_input = self.dropout(layer_input)
            outputs = []
            for direction in range(self.directions):
                k = layer * self.directions + direction
                backward = reverse if direction == 1 else None
                cell = self.cells[k]
                assert isinstance(cell, LoopCell)
                state = tuple(s[k] for s in initial)
                out, final = _run_direction(cell, layer_input, state, valid, backward)
                outputs.append(out)
                for stack, tensor in zip(finals, final, strict=True):
                    stack.append(tensor)
            layer_input = torch.cat(outputs, dim=-1)  # [B, T, D*H]
        stacked = [torch.stack(stack) for stack in finals]
        return layer_input, (stacked[0], stacked[1]) if self.has_cell else stacked[0]

    def _initial_state(self, hx: LSTMStateTuple | Tensor | None, inputs: Tensor) -> CellState:
        """hx as a tuple, (h_0, c_0) or (h_0,), zeros when None."""
        if hx is None:
            zeros = inputs.new_zeros(
                self.num_layers * self.directions, inputs.size(0), self.hidden_size
            )
            return (zeros, zeros) if self.has_cell else (zeros,)
        if isinstance(hx, Tensor):
            return (hx,)
        return hx


class PeepholeLSTM(LoopRNN):
    """A stack of `PeepholeLSTMCell` layers with nn.LSTM's interface (see `LoopRNN`)."""

    cell_type = PeepholeLSTMCell


def _reverse_index(lengths: Tensor | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """[B, T] positions that reverse each sequence within its own length (padding stays put).

    It is its own inverse: gathering with it twice gives the original order back.
    """
    positions = torch.arange(steps, device=device).expand(batch, steps)
    if lengths is None:
        return positions.flip(1)
    lens = lengths.to(device)[:, None]
    return torch.where(positions < lens, lens - 1 - positions, positions)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    """x [B, T, F] reordered along time by index [B, T]."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


def _run_direction(
    cell: LoopCell,
    inputs: Tensor,
    state: CellState,
    valid: Tensor | None,
    reverse: Tensor | None,
) -> tuple[Tensor, CellState]:
    """One layer in one direction: inputs [B, T, I] -> outputs [B, T, H], the final state.

    `valid` [B, T] freezes the state and zeroes the output at padding; `reverse` [B, T] (for the
    backward direction) reads each sequence from its last real token back to its first.
    """
    if reverse is not None:
        inputs = _gather_time(inputs, reverse)
    gates_x = cell.project_input(inputs)  # [B, T, G]
    outputs = []
    for t in range(inputs.size(1)):
        new = cell.recur(gates_x[:, t], state)
        h_t = new[0]
        if valid is None:
            state = new
        else:
            keep = valid[:, t, None]  # [B, 1]
            state = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
            h_t = h_t.masked_fill(~keep, 0.0)
        outputs.append(h_t)
    out = torch.stack(outputs, dim=1)  # [B, T, H]
    if reverse is not None:
        out = _gather_time(out, reverse)
    return out, state


# ---------------------------------------------------------------- LSTM over lengths, for the CPU


def lstm_by_steps(
    block: nn.LSTM, x: Tensor, lengths: Tensor, hx: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """`nn.LSTM` over a padded batch with `lengths`, computed as packing would, for the CPU.

    x [B, T, I] -> outputs [B, T, D*H] (zeros past each length) and (h_n, c_n) [L*D, B, H] in
    torch's layout. PyTorch's CPU kernel for packed sequences slices its input gates once per
    time step, and the backward of every slice zero-fills the whole [N, 4H] buffer, so its
    cost grows with the square of the length (it was a third of a demo training step). Here
    the input projection of a layer is one matrix product for all positions, the batch is
    sorted by length so the rows still running are a prefix, and the steps are `unbind` views
    (whose backward is one stack).
    """
    batch, total = x.shape[:2]
    directions = 2 if block.bidirectional else 1
    size = block.hidden_size
    order = torch.argsort(lengths.cpu(), descending=True, stable=True)
    sorted_lens = lengths.cpu()[order]
    steps = int(sorted_lens[0])
    running = (sorted_lens[None, :] > torch.arange(steps)[:, None]).sum(1).tolist()  # per step
    order = order.to(x.device)
    layer_input = x.index_select(0, order)[:, :steps]
    # Each sentence read backwards within its own length (padding stays put): the backward
    # direction is then a forward run whose rows end where the forward direction's do.
    reverse = _reverse_index(sorted_lens.to(x.device), batch, steps, x.device)
    if hx is None:
        zeros = x.new_zeros(block.num_layers * directions, batch, size)
        hx = (zeros, zeros)
    h0, c0 = (s.index_select(1, order) for s in hx)
    finals_h, finals_c = [], []
    for layer in range(block.num_layers):
        suffixes = [f"_l{layer}", f"_l{layer}_reverse"][:directions]
        gates_x, w_hh = [], []
        for direction, suffix in enumerate(suffixes):
            w_ih, w_hh_d, b_ih, b_hh = (getattr(block, name + suffix) for name in _LSTM_WEIGHTS)
            inputs = layer_input if direction == 0 else _gather_time(layer_input, reverse)
            flat = inputs.reshape(-1, inputs.size(-1))
            gates_x.append(torch.addmm(b_ih + b_hh, flat, w_ih.t()).view(batch, steps, 4 * size))
            w_hh.append(w_hh_d.t())
        first = layer * directions
        out, (h_n, c_n) = _lstm_directions(
            torch.stack(gates_x),
            torch.stack(w_hh),
            running,
            (h0[first : first + directions], c0[first : first + directions]),
        )  # out [D, B, T, H], h_n / c_n [D, B, H]
        finals_h.append(h_n)
        finals_c.append(c_n)
        if directions == 1:
            layer_input = out[0]
        else:
            layer_input = torch.cat([out[0], _gather_time(out[1], reverse)], dim=-1)
        if layer < block.num_layers - 1 and block.dropout:
            layer_input = dropout(layer_input, block.dropout, block.training)
    inverse = torch.argsort(order)
    out = F.pad(layer_input, (0, 0, 0, total - steps)).index_select(0, inverse)
    h_n = torch.cat(finals_h).index_select(1, inverse)
    c_n = torch.cat(finals_c).index_select(1, inverse)
    return out, (h_n, c_n)


_LSTM_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _lstm_directions(
    gates_x: Tensor,
    w_hh_t: Tensor,
    running: list[int],
    state: tuple[Tensor, Tensor],
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """The D directions of one layer, side by side. gates_x [D, B, T, 4H] (rows sorted by
    length, longest first; the backward direction's inputs already reversed within each
    length), w_hh_t [D, H, 4H], running[t] = rows still inside their sentence at step t,
    state (h0, c0) [D, B, H] -> outputs [D, B, T, H] (zeros past each length), final (h, c)
    [D, B, H]. Rows leave as their sentences end (their state is then final). Both
    directions advance in one batched product per step, so a bidirectional layer costs the
    per-step overhead of one."""
    batch = gates_x.size(1)
    h, c = state
    inputs = gates_x.unbind(2)
    outputs: list[Tensor] = []
    done_h: list[Tensor] = []
    done_c: list[Tensor] = []
    for t, k in enumerate(running):
        if k < h.size(1):  # these rows have ended
            done_h.append(h[:, k:])
            done_c.append(c[:, k:])
            h, c = h[:, :k], c[:, :k]
        i, f, g, o = torch.baddbmm(inputs[t][:, :k], h, w_hh_t).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(F.pad(h, (0, 0, 0, batch - k)))
    final_h = torch.cat([h, *reversed(done_h)], dim=1)
    final_c = torch.cat([c, *reversed(done_c)], dim=1)
    return torch.stack(outputs, dim=2), (final_h, final_c)
