"""Analytic FLOP counts of a Seq2Seq model, for model FLOPs utilisation (MFU) figures.

    counts = FlopCounts.of(model)
    forward = counts.forward(src_tokens=S, tgt_tokens=T, pairs=P, sentences=N)
    training = 3 * forward                       # backward ~ 2x forward

Only matrix products count (2 FLOPs per multiply-add), as in the usual MFU convention and
torch.utils.flop_counter; element-wise work (gates, tanh, softmax, biases) and embedding
lookups are left out. Each weight matrix is charged where it is applied:

- per source token: the encoder RNN (every layer and direction) and the projection of the
  attention keys (Luong general, Bahdanau/concat W_k, multi-head K and V);
- per target token: the decoder RNN, input feeding, attention queries, the attentional layer,
  and the output layer;
- per (source, target) pair: attention scores and the context (2 x 2H), or, for additive
  attention, vᵀ tanh(...) and the context;
- per sentence: the bridge to the decoder's initial state (`bridge`: once per decoder layer;
  `mean`: once).

Padding is not counted: `src_tokens`/`tgt_tokens` are real tokens (EOS included, the target's
BOS input pairs with its EOS output), `pairs` = sum over sentences of S_i x T_i.
tests/models/test_flops.py checks these counts against torch's FlopCounterMode on batches without
padding, for every attention, input feeding and cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from nmtkit.models.attention import NoAttention
from nmtkit.models.seq2seq import Seq2Seq


@dataclass(frozen=True)
class FlopCounts:
    """Forward FLOPs per unit of work (see the module docstring)."""

    per_src_token: int
    per_tgt_token: int
    per_pair: int
    per_sentence: int

    @classmethod
    def of(cls, model: Seq2Seq) -> FlopCounts:
        decoder = model.decoder
        rnn = decoder.rnn
        hidden, layers = int(decoder.hidden_size), len(rnn.blocks) * int(rnn.layers_per_block)
        src = tgt = pair = sentence = 0  # multiply-adds
        for name, param in model.named_parameters(remove_duplicate=False):
            if param.dim() != 2 or name.endswith(("embed.weight", "peephole")):
                continue  # biases, peepholes (element-wise) and lookups
            macs = param.shape[0] * param.shape[1]
            if name.startswith("encoder."):
                src += macs
            elif ".attention.mha.in_proj_weight" in name:  # [3H, H]: Q per target, K V per source
                tgt, src = tgt + macs // 3, src + 2 * macs // 3
            elif ".attention.key_proj." in name:
                src += macs
            elif ".attention.energy." in name:  # additive attention's v [1, H], for every pair
                pair += macs
            elif ".bridge.proj." in name:  # `mean`: one projection, copied to every layer
                sentence += macs
            elif ".bridge." in name:  # `bridge`: each layer's final state is projected
                sentence += macs * layers
            else:
                tgt += macs
        if not isinstance(decoder.attention, NoAttention):
            # the context, and the scores unless additive attention's v made them
            pair += hidden if pair else 2 * hidden
        return cls(2 * src, 2 * tgt, 2 * pair, 2 * sentence)

    def forward(self, *, src_tokens: int, tgt_tokens: int, pairs: int, sentences: int) -> int:
        """Forward FLOPs of one pass over a batch with these real-token counts."""
        return (
            self.per_src_token * src_tokens
            + self.per_tgt_token * tgt_tokens
            + self.per_pair * pairs
            + self.per_sentence * sentences
        )
