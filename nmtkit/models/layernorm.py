"""Layer-normalised LSTM and GRU cells (Ba et al. 2016, "Layer Normalization", section 3.1 and
appendix; as in Nematus and Marian), and their stacks.

    cell = LayerNormLSTMCell(8, 16)
    h, c = cell(x, (h, c))                                     # one step: [B, 8] -> [B, 16]
    lstm = LayerNormLSTM(8, 16, num_layers=2, bidirectional=True, dropout=0.1)
    outputs, (h_n, c_n) = lstm(x, lengths=lens)                # [B, T, 8] -> [B, T, 32]
    gru = LayerNormGRU(8, 16)
    outputs, h_n = gru(x, lengths=lens)                        # nn.GRU's layout, no c

The input projection W x and the recurrent projection U h are normalised separately, each
over all of its gates together and each with its own gain and bias, before they are added:
the recurrent statistics then do not depend on how large the input happens to be. The stacks
are `cells.LoopRNN`s: a Python step loop that takes `lengths` (padding never reaches the
recurrence), with the input projection and its normalisation done once per sequence.

Initialisation: the normalisations' gains 1 and biases 0 (`Seq2Seq`'s `param_init: uniform`
leaves every nn.LayerNorm so); weights U(-1/√H, 1/√H) like nn.LSTM; the LSTM's own gate bias
0 except the forget gate's 1 (Jozefowicz et al. 2015).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmtkit.models.cells import CellState, LoopCell, LoopRNN


class LayerNormLSTMCell(LoopCell):
    """LSTM cell with layer normalisation (Ba et al. 2016, section 3.1):

        [i; f; g; o] = LN_x(W x_t) + LN_h(U h_{t-1}) + b          each LN over all 4H features
        c_t = sigmoid(f) ⊙ c_{t-1} + sigmoid(i) ⊙ tanh(g)
        h_t = sigmoid(o) ⊙ tanh(LN_c(c_t))

    LN(z) = gain ⊙ (z - mean(z)) / sqrt(var(z) + ε) + bias, each LN with its own gain and bias.
    The cell state is carried unnormalised; only the output reads it normalised. Parameters
    (gates in nn.LSTMCell's order i, f, g, o): `weight_ih` [4H, I], `weight_hh` [4H, H],
    `bias` [4H], `ln_ih`, `ln_hh` (nn.LayerNorm(4H)), `ln_cell` (nn.LayerNorm(H)).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.ln_ih = nn.LayerNorm(4 * hidden_size)
        self.ln_hh = nn.LayerNorm(4 * hidden_size)
        self.ln_cell = nn.LayerNorm(hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, -bound, bound)
        with torch.no_grad():
            self.bias.zero_()
            self.bias[self.hidden_size : 2 * self.hidden_size].fill_(1.0)
        for norm in (self.ln_ih, self.ln_hh, self.ln_cell):
            norm.reset_parameters()

    def forward(self, x: Tensor, state: CellState) -> CellState:
        """One step: x [B, I], state (h [B, H], c [B, H]) -> (h_t, c_t)."""
        return self.recur(self.project_input(x), state)

    def project_input(self, x: Tensor) -> Tensor:
        """LN_x(W x) + b, [..., I] -> [..., 4H]; done once for a whole sequence."""
        return self.ln_ih(F.linear(x, self.weight_ih)) + self.bias

    def recur(self, gates_x: Tensor, state: CellState) -> CellState:
        """The recurrent part of one step, given `project_input(x_t)` [B, 4H]."""
        h, c = state
        gates = gates_x + self.ln_hh(F.linear(h, self.weight_hh))  # [B, 4H]
        i, f, g, o = gates.chunk(4, dim=-1)  # each [B, H]
        c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_t = torch.sigmoid(o) * torch.tanh(self.ln_cell(c_t))
        return h_t, c_t


class LayerNormGRUCell(LoopCell):
    """GRU cell with layer normalisation, torch's GRU with its two projections normalised:

        [r_x; z_x; n_x] = LN_x(W x_t)      [r_h; z_h; n_h] = LN_h(U h_{t-1})     each over 3H
        r = sigmoid(r_x + r_h),  z = sigmoid(z_x + z_h)
        n = tanh(n_x + r ⊙ n_h)
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    The normalisations' biases play the parts of nn.GRU's b_ih and b_hh (LN_h's candidate
    slice sits inside the reset gate's product, as b_hn does), so there is no other bias.
    Parameters (gates in nn.GRUCell's order r, z, n): `weight_ih` [3H, I], `weight_hh`
    [3H, H], `ln_ih`, `ln_hh` (nn.LayerNorm(3H)).
    """

    has_cell = False

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.ln_ih = nn.LayerNorm(3 * hidden_size)
        self.ln_hh = nn.LayerNorm(3 * hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, -bound, bound)
        self.ln_ih.reset_parameters()
        self.ln_hh.reset_parameters()

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """One step: x [B, I], h [B, H] -> h_t [B, H]."""
        return self.recur(self.project_input(x), (h,))[0]

    def project_input(self, x: Tensor) -> Tensor:
        """LN_x(W x), [..., I] -> [..., 3H]; done once for a whole sequence."""
        return self.ln_ih(F.linear(x, self.weight_ih))

    def recur(self, gates_x: Tensor, state: CellState) -> CellState:
        """The recurrent part of one step, given `project_input(x_t)` [B, 3H]."""
        (h,) = state
        gates_h = self.ln_hh(F.linear(h, self.weight_hh))  # [B, 3H]
        r_x, z_x, n_x = gates_x.chunk(3, dim=-1)  # each [B, H]
        r_h, z_h, n_h = gates_h.chunk(3, dim=-1)
        r = torch.sigmoid(r_x + r_h)
        z = torch.sigmoid(z_x + z_h)
        n = torch.tanh(n_x + r * n_h)
        return ((1 - z) * n + z * h,)


class LayerNormLSTM(LoopRNN):
    """A stack of `LayerNormLSTMCell` layers with nn.LSTM's interface (see `cells.LoopRNN`)."""

    cell_type = LayerNormLSTMCell


class LayerNormGRU(LoopRNN):
    """A stack of `LayerNormGRUCell` layers with nn.GRU's interface (see `cells.LoopRNN`):
    the final state is h_n alone, and `hx` is h_0 alone."""

    cell_type = LayerNormGRUCell
