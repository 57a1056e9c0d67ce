"""The RNN encoder: source ids -> one state per source token, plus final states for the decoder.

    enc = encoder(src, src_lens)      # src [B, S] ids, src_lens [B]
    enc.states [B, S, H], enc.mask [B, S], enc.hidden [L_enc, B, H], enc.cell [L_enc, B, H] | None

word dropout (training: tokens -> <unk> or zero embeddings) -> embedding (given from outside,
so source and target can share it) -> embedding dropout -> `StackedRNN` (LSTM / GRU / peephole
or layer-normalised LSTM / GRU; bidirectional, stacked, packed so that padding never reaches
the recurrence; optional residual connections between layers). `variational`: embedding dropout
and dropout between layers draw one mask per sentence, shared by all its positions.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from nmtkit.models.dropout import Dropout, WordDropout
from nmtkit.models.rnn import StackedRNN
from nmtkit.recipe import CellKind, WordDropoutMode


class EncoderOutput(NamedTuple):
    """Everything the decoder and the search need from the source side.

    Every tensor has the batch in it, so `select` can expand it to beams or drop finished
    sentences. `keys` holds attention keys that do not depend on the query (W_k k for Bahdanau,
    W k for Luong general), projected once per sentence by `Seq2Seq.encode`; None when the
    attention has none, or when the encoder was called directly (attention then projects them).
    """

    states: Tensor  # [B, S, H] top-layer outputs, zeros at padding
    mask: Tensor  # [B, S] bool, True at real tokens
    lengths: Tensor  # [B]
    hidden: Tensor  # [L_enc, B, H] final hidden state per layer, directions concatenated
    cell: Tensor | None  # [L_enc, B, H] final LSTM cell per layer; None for GRU
    keys: Tensor | None = None  # [B, S, H] precomputed attention keys

    def select(self, index: Tensor) -> EncoderOutput:
        """Keep / repeat batch entries: every tensor index_select-ed along its batch dimension."""
        return EncoderOutput(
            states=self.states.index_select(0, index),
            mask=self.mask.index_select(0, index),
            lengths=self.lengths.index_select(0, index),
            hidden=self.hidden.index_select(1, index),
            cell=None if self.cell is None else self.cell.index_select(1, index),
            keys=None if self.keys is None else self.keys.index_select(0, index),
        )


class RNNEncoder(nn.Module):
    """Word dropout -> embedding -> dropout -> stacked (bi)directional RNN over the source."""

    def __init__(
        self,
        embed: nn.Embedding,
        *,
        cell: CellKind,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        embed_dropout: float = 0.0,
        residual: bool = False,
        word_dropout: float = 0.0,
        word_dropout_mode: WordDropoutMode = "unk",
        variational: bool = False,
    ) -> None:
        super().__init__()
        self.embed = embed
        self.hidden_size = hidden_size
        self.word_dropout = WordDropout(word_dropout, word_dropout_mode)
        self.embed_dropout = Dropout(embed_dropout, variational=variational)
        self.rnn = StackedRNN(
            cell,
            embed.embedding_dim,
            hidden_size,
            num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            residual=residual,
            variational=variational,
        )

    def forward(self, src: Tensor, src_lens: Tensor) -> EncoderOutput:
        """src [B, S] ids (padded with pad id), src_lens [B] (each >= 1) -> EncoderOutput."""
        _check_encoder_inputs(src, src_lens)
        dropped = self.word_dropout.draw(src)  # [B, S] bool; None when off (nothing drawn)
        emb = self.embed_dropout(self.word_dropout.lookup(self.embed, src, dropped))  # [B, S, E]
        out = self.rnn(emb, lengths=src_lens)  # outputs [B, S, H]
        lengths = src_lens.to(src.device)
        positions = torch.arange(src.size(1), device=src.device)
        mask = positions[None, :] < lengths[:, None]  # [B, S]
        return EncoderOutput(
            states=out.outputs,
            mask=mask,
            lengths=lengths,
            hidden=out.state.hidden,
            cell=out.state.cell,
        )


def _check_encoder_inputs(src: Tensor, src_lens: Tensor) -> None:
    """src must be [B, S] integer ids and src_lens [B]."""
    if src.dim() != 2 or src.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"src must be [B, S] integer ids, got {tuple(src.shape)} {src.dtype}")
    if src_lens.shape != (src.size(0),):
        raise ValueError(f"src_lens must be [B] = [{src.size(0)}], got {tuple(src_lens.shape)}")
