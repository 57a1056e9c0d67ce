"""The RNN decoder: one target token at a time (search) or a whole target (teacher forcing).

    state = decoder.init_state(enc)
    log_probs, state, attn = decoder.step(prev_ids, state, enc)   # [B, V], ..., [B, S] | None
    state = decoder.reorder(state, index)                         # beam search
    logits = decoder(tgt_in, enc)                                 # [B, T, V], teacher forcing

This is the whole interface search uses (see DESIGN.md). Teacher-forced `forward` equals a loop
of `step` (tested). When attention looks at the decoder's current state (Luong, multi-head, or
none) and there is no input feeding, no step depends on the previous step's attention, so
`forward` takes a fast path: one fused RNN call over the whole target and attention for all T
steps at once. Bahdanau attention (queried with the previous state, its context fed into the
cell) and input feeding need the step loop.

Training-time randomness that must stay fixed along a sequence is drawn once, at the start of
`forward` (`draw_masks` -> `DropoutMasks`): word dropout's decisions for every target input
token and, with `variational`, one dropout mask per sentence for the embeddings, between the
layers and on h̃. Both paths read them, and a loop of `step(..., masks=masks.at(t))` over the
same masks equals `forward` in training too (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmtkit.models.attention import Attention, StepAttention
from nmtkit.models.bridge import Bridge
from nmtkit.models.dropout import Dropout, WordDropout, apply_mask
from nmtkit.models.encoder import EncoderOutput
from nmtkit.models.rnn import LayerMasks, RNNState, StackedRNN
from nmtkit.recipe import CellKind, FeedingKind, WordDropoutMode


class DecoderState(NamedTuple):
    """The decoder's state between steps; every tensor has the batch in it (see `reorder`)."""

    hidden: Tensor  # [L, B, H]
    cell: Tensor | None  # [L, B, H]; None for GRU
    feed: Tensor | None  # [B, H] previous attentional vector h̃_{t-1}; None without input feeding


class StepOutput(NamedTuple):
    log_probs: Tensor  # [B, V] fp32
    state: DecoderState
    attention: Tensor | None  # [B, S] fp32; None for attention `none`


class DropoutMasks(NamedTuple):
    """The dropout decisions of one teacher-forced batch, drawn once (`RNNDecoder.draw_masks`);
    None where a kind of dropout is off. Variational masks hold 0 or 1 / (1 - p)."""

    words: Tensor | None  # [B, T] bool (one step's: [B]), True where word dropout hits y_{t-1}
    embed: Tensor | None  # [B, E] variational mask on e_t
    layers: LayerMasks | None  # [B, H] each: variational masks between stacked layers
    output: Tensor | None  # [B, H] variational mask on h̃_t

    def at(self, t: int) -> DropoutMasks:
        """The masks of step t: the word-dropout decisions of position t; the others are the
        same at every step."""
        return self._replace(words=None if self.words is None else self.words[:, t])


class _Advance(NamedTuple):
    """Steps 2-5 of one decoder step: what `step` and the teacher-forced loop share."""

    attentional: Tensor  # [B, H] h̃_t after dropout
    state: DecoderState
    weights: Tensor | None  # [B, S]


class InputFeeding(nn.Module):
    """Step 2 of the decoder: how the previous attentional vector h̃_{t-1} [B, H] joins the
    embedding e_t [B, E] to make the RNN input x_t (Luong et al. 2015, section 3.3).

        none:    x_t = e_t                                                    size E
        concat:  x_t = [e_t; h̃_{t-1}]                                         size E + H
        linear:  x_t = [e_t; W_f h̃_{t-1}]                                     size 2E
        gated:   f = W_f h̃_{t-1},  g = sigmoid(W_g [e_t; f] + b_g),
                 x_t = [e_t; g ⊙ f + (1 - g) ⊙ W_e e_t]                       size 2E

    W_f: H -> E, W_e: E -> E (no biases); W_g: 2E -> E. The gate decides, per feature, how much
    of the fed-back attention and how much of the (transformed) embedding the RNN sees.
    """

    def __init__(self, kind: FeedingKind, embed_size: int, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        sizes = {"none": embed_size, "concat": embed_size + hidden_size}
        self.output_size = sizes.get(kind, 2 * embed_size)
        if kind in ("linear", "gated"):
            self.feed_proj = nn.Linear(hidden_size, embed_size, bias=False)  # W_f
        if kind == "gated":
            self.embed_proj = nn.Linear(embed_size, embed_size, bias=False)  # W_e
            self.gate = nn.Linear(2 * embed_size, embed_size)  # W_g, b_g
        if kind not in ("none", "concat", "linear", "gated"):
            raise ValueError(f"unknown input feeding {kind!r}")

    def forward(self, emb: Tensor, feed: Tensor | None) -> Tensor:
        """emb [B, E], feed [B, H] (None only for `none`) -> x [B, output_size]."""
        if self.kind == "none":
            return emb
        return torch.cat([emb, self.rest(emb, feed)], dim=-1)

    def rest(self, emb: Tensor, feed: Tensor | None) -> Tensor:
        """x without its first E columns (which are always e_t): [B, output_size - E]."""
        if self.kind == "none":
            return emb[:, :0]
        if feed is None:
            raise ValueError(f"input feeding {self.kind!r} needs the previous attentional vector")
        if self.kind == "concat":
            return feed
        fed = self.feed_proj(feed)  # [B, E]
        if self.kind == "linear":
            return fed
        gate = torch.sigmoid(self.gate(torch.cat([emb, fed], dim=-1)))  # [B, E]
        return gate * fed + (1 - gate) * self.embed_proj(emb)


class OutputLayer(nn.Module):
    """h̃ [..., H] -> logits [..., V]: a Linear to the vocabulary.

    With `tied_size` the projection takes `tied_size` inputs so that its weight can be tied to
    the target embedding ([V, E]); when E != H a Linear H -> E (no bias) comes first.
    """

    def __init__(self, hidden_size: int, vocab_size: int, *, tied_size: int | None = None) -> None:
        super().__init__()
        in_size = hidden_size if tied_size is None else tied_size
        self.pre = (
            nn.Identity() if in_size == hidden_size else nn.Linear(hidden_size, in_size, False)
        )
        self.proj = nn.Linear(in_size, vocab_size)

    def tie(self, embed: nn.Embedding) -> None:
        """Share the projection's weight with `embed` (the same Parameter object)."""
        if self.proj.weight.shape != embed.weight.shape:
            raise ValueError(
                f"cannot tie an output layer {tuple(self.proj.weight.shape)} to an embedding "
                f"{tuple(embed.weight.shape)}"
            )
        self.proj.weight = embed.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.pre(x))

    def restricted(self, ids: Tensor) -> Callable[[Tensor], Tensor]:
        """The layer for the target ids `ids` [N] only: h̃ [..., H] -> logits [..., N], column
        n being id ids[n]'s logit (vocabulary shortlists; the rows are gathered once, and
        under autocast cast once: autocast caches the casts of parameters, not of these)."""
        weight, bias, pre = self.proj.weight[ids], self.proj.bias[ids], self.pre
        device = weight.device.type
        if torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            weight, bias = weight.to(dtype), bias.to(dtype)
        return lambda x: F.linear(pre(x), weight, bias)


class RNNDecoder(nn.Module):
    """Stacked RNN decoder with attention, input feeding and an attentional output layer."""

    def __init__(
        self,
        embed: nn.Embedding,
        attention: Attention,
        bridge: Bridge,
        output: OutputLayer,
        *,
        cell: CellKind,
        hidden_size: int,
        num_layers: int = 1,
        input_feeding: FeedingKind = "concat",
        dropout: float = 0.0,
        embed_dropout: float = 0.0,
        residual: bool = False,
        word_dropout: float = 0.0,
        word_dropout_mode: WordDropoutMode = "unk",
        variational: bool = False,
    ) -> None:
        super().__init__()
        self.embed, self.attention, self.bridge, self.output = embed, attention, bridge, output
        self.hidden_size = hidden_size
        self.variational = variational
        self.word_dropout = WordDropout(word_dropout, word_dropout_mode)
        self.embed_dropout = Dropout(embed_dropout, variational=variational)
        self.feeding = InputFeeding(input_feeding, embed.embedding_dim, hidden_size)
        context_size = hidden_size if attention.before_cell else 0
        self.rnn = StackedRNN(
            cell,
            self.feeding.output_size + context_size,
            hidden_size,
            num_layers,
            dropout=dropout,
            residual=residual,
            variational=variational,
        )
        self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)  # W_c
        self.dropout = Dropout(dropout, variational=variational)

    @property
    def fast_path_allowed(self) -> bool:
        """Attention after the cell and no input feeding: teacher forcing needs no step loop."""
        return not self.attention.before_cell and self.feeding.kind == "none"

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        """The state before the first step: the bridge's h (and c); h̃_0 = 0 for input feeding."""
        hidden, cell = self.bridge(enc)  # [L, B, H]
        feed = None
        if self.feeding.kind != "none":
            feed = enc.states.new_zeros(enc.states.size(0), self.hidden_size)  # [B, H]
        return DecoderState(hidden, cell, feed)

    def reorder(self, state: DecoderState, index: Tensor) -> DecoderState:
        """Select / repeat batch entries of `state` (beam search): index [B'] -> batch B'."""
        return DecoderState(
            hidden=state.hidden.index_select(1, index),
            cell=None if state.cell is None else state.cell.index_select(1, index),
            feed=None if state.feed is None else state.feed.index_select(0, index),
        )

    def step(
        self,
        prev_ids: Tensor,
        state: DecoderState,
        enc: EncoderOutput,
        *,
        masks: DropoutMasks | None = None,
        output: Callable[[Tensor], Tensor] | None = None,
    ) -> StepOutput:
        """One decoder step: prev_ids [B] -> log_probs [B, V], new state, attention [B, S].

        prev_ids and the state may have K rows per sentence of `enc` (B*K rows, sentence b's
        at b*K .. b*K+K-1): beam search keeps one encoder row per sentence, and attention
        reads it once for the K beams.

        1. embed the previous token: e_t = dropout(E word_dropout(y_{t-1}))         [B, E]
        2. input feeding: x_t = feed(e_t, h̃_{t-1}) (see `InputFeeding`; h̃_0 = 0);
           Bahdanau: c_t = attend(s_{t-1}, enc) with the previous top state, x_t = [x_t; c_t]
        3. run the RNN one step: s_t = RNN(x_t, s_{t-1}); h_t = top layer of s_t     [B, H]
        4. attend (Luong, multi-head): c_t, a_t = attend(h_t, enc); none: c_t = h_enc
        5. attentional vector: h̃_t = dropout(tanh(W_c [c_t; h_t]))                 [B, H]
        6. output: log_softmax(W_o h̃_t + b_o)                                        [B, V]

        `masks` (training only): this step's dropout decisions, `draw_masks(tgt_in).at(t)`, so
        that a loop of steps equals `forward`; needed in training with variational dropout.
        Without them a training step draws its own word-dropout decisions.

        `output` replaces the output layer in 6., e.g. `self.output.restricted(ids)` for a
        shortlist: log_probs are then over those N ids only, renormalised ([B, N]).
        """
        _check_step_inputs(prev_ids, state, enc)
        if masks is None:
            masks = self._step_masks(prev_ids)
        emb = self._embed(prev_ids, masks)  # 1. [B, E]
        table = self._folded_embedding()
        first_gates = None if table is None else table.index_select(0, prev_ids)
        advance = self._advance(emb, state, enc, first_gates=first_gates, masks=masks)  # 2.-5.
        logits = (self.output if output is None else output)(advance.attentional)  # 6. [B, V]
        log_probs = F.log_softmax(logits.float(), dim=-1)
        return StepOutput(log_probs, advance.state, advance.weights)

    def forward(
        self,
        tgt_in: Tensor,
        enc: EncoderOutput,
        *,
        fast_path: bool | None = None,
        positions: Tensor | None = None,
        project: bool = True,
    ) -> Tensor:
        """Teacher forcing: tgt_in [B, T] (bos + target, padded) -> logits [B, T, V].

        fast_path None: take it when allowed (`fast_path_allowed`); True when not allowed is an
        error; False always runs the step loop. `positions` (bool [B, T]): project only those
        positions, as one [N, H] x [H, V] product -> logits [N, V]. `project` False: return
        the attentional vectors h̃ ([B, T, H] or [N, H]) instead of logits, for a loss that
        applies the output layer itself (`train.loss.projected_loss`).
        """
        _check_forward_inputs(tgt_in, enc)
        if fast_path is None:
            fast_path = self.fast_path_allowed
        if fast_path and not self.fast_path_allowed:
            raise ValueError(
                "the fast path needs attention after the cell (not bahdanau) and input_feeding none"
            )
        if enc.keys is None:  # not from Seq2Seq.encode: project the keys once, not per step
            enc = enc._replace(keys=self.attention.project_keys(enc.states))
        masks = self.draw_masks(tgt_in)  # training only; None when nothing is drawn
        emb = self._embed(tgt_in, masks)  # [B, T, E]
        state = self.init_state(enc)
        if fast_path:
            attentional = self._forward_fast(emb, state, enc, masks)
        else:
            attentional = self._forward_loop(emb, state, enc, masks)
        if positions is not None:
            attentional = attentional[positions]  # [N, H]
        return self.output(attentional) if project else attentional

    def draw_masks(self, tgt_in: Tensor) -> DropoutMasks | None:
        """The dropout decisions for teacher forcing tgt_in [B, T] (see `DropoutMasks`), drawn
        in this order: word dropout, then the variational masks (embedding, between layers,
        h̃). None in eval mode or with both off; nothing is drawn for what is off."""
        words = self.word_dropout.draw(tgt_in)  # [B, T] | None
        if not (self.variational and self.training):
            return None if words is None else DropoutMasks(words, None, None, None)
        batch, device = tgt_in.size(0), tgt_in.device
        embed = self.embed_dropout.draw_mask(batch, self.embed.embedding_dim, device)
        layers = self.rnn.layer_masks(batch, device)
        output = self.dropout.draw_mask(batch, self.hidden_size, device)
        return DropoutMasks(words, embed, layers, output)

    def _step_masks(self, prev_ids: Tensor) -> DropoutMasks | None:
        """A step's own dropout decisions when `step` is given none: word dropout for these
        tokens. Variational masks must be the sequence's, so they cannot be drawn here."""
        needs_masks = self.dropout.p > 0.0 or self.embed_dropout.p > 0.0
        if self.training and self.variational and needs_masks:
            raise ValueError(
                "a training step with variational dropout needs the sequence's masks: "
                "draw_masks(tgt_in).at(t)"
            )
        words = self.word_dropout.draw(prev_ids)  # [B] | None
        return None if words is None else DropoutMasks(words, None, None, None)

    def _embed(self, ids: Tensor, masks: DropoutMasks | None) -> Tensor:
        """Word dropout, lookup, embedding dropout: ids [B, T] or [B] -> [B, T, E] or [B, E]."""
        emb = self.word_dropout.lookup(self.embed, ids, None if masks is None else masks.words)
        if self.variational:
            return apply_mask(emb, None if masks is None else masks.embed)
        return self.embed_dropout(emb)

    def _drop_attentional(self, x: Tensor, masks: DropoutMasks | None) -> Tensor:
        """Dropout on h̃ [B, H] or [B, T, H]: per element, or the sequence's variational mask."""
        if self.variational:
            return apply_mask(x, None if masks is None else masks.output)
        return self.dropout(x)

    def _advance(
        self,
        emb: Tensor,
        state: DecoderState,
        enc: EncoderOutput,
        attend: StepAttention | None = None,
        first_gates: Tensor | None = None,
        masks: DropoutMasks | None = None,
    ) -> _Advance:
        """Steps 2-5 of `step` for embedded tokens emb [B, E]; `attend` (teacher-forced loop)
        replaces the attention call of step 4. `first_gates` (inference, see
        `_folded_embedding`): the first layer's input projection of e_t, so x_t is passed
        without its e_t columns and is never concatenated. `masks`: the variational masks."""
        if first_gates is None:
            x = self.feeding(emb, state.feed)  # 2. [B, E']
        else:
            x = self.feeding.rest(emb, state.feed)  # 2. [B, E' - E]
        context, weights = None, None
        if self.attention.before_cell:
            context, weights = self.attention(state.hidden[-1], enc)  # [B, H], [B, S]
            x = torch.cat([x, context], dim=-1)  # [B, E' + H]
        rnn_state = RNNState(state.hidden, state.cell)
        layers = None if masks is None else masks.layers
        out = self.rnn.step(x, rnn_state, first_gates=first_gates, masks=layers)  # 3.
        h = out.outputs  # [B, H]
        if not self.attention.before_cell:
            context, weights = attend(h) if attend else self.attention(h, enc)  # 4. [B, H], [B, S]
        assert context is not None
        attentional = torch.tanh(self.combine(torch.cat([context, h], -1)))  # 5.
        attentional = self._drop_attentional(attentional, masks)
        feed = attentional if self.feeding.kind != "none" else None
        return _Advance(attentional, DecoderState(out.state.hidden, out.state.cell, feed), weights)

    def _folded_embedding(self) -> Tensor | None:
        """At inference (eval mode, no gradients), for a unidirectional LSTM/GRU decoder: the
        first layer's input projection of every target embedding, E W_e^T + b_ih [V, G], so
        that a search step looks e_t's share up instead of multiplying it (a quarter to a
        third of the step's products) and never concatenates [e_t; ...]. Cached until the
        weights change (their version counters) or move; None when it does not apply.

        CPU only: the table's rows reach `torch.lstm_cell` / `gru_cell` as a per-row [B, G]
        input bias, which the CPU's composite cell broadcasts but the fused CUDA kernels
        (`_thnn_fused_lstm_cell`, 1-D biases only) refuse; on a GPU the product it saves is
        cheap and the fused kernel is worth more."""
        weights = self.rnn.first_input_weights()
        if self.training or torch.is_grad_enabled() or weights is None:
            return None
        w_ih, b_ih = weights
        embedding = self.embed.weight
        if embedding.device.type != "cpu":
            return None
        key = tuple((t.data_ptr(), t._version) for t in (embedding, w_ih, b_ih))
        cached = getattr(self, "_folded_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.autocast(embedding.device.type, enabled=False):
            size = embedding.size(1)
            table = torch.addmm(b_ih, embedding, w_ih[:, :size].t())  # [V, G]
        self._folded_cache = (key, table)
        return table

    def _forward_loop(
        self, emb: Tensor, state: DecoderState, enc: EncoderOutput, masks: DropoutMasks | None
    ) -> Tensor:
        """Steps 2-5 for every position in turn: emb [B, T, E] -> h̃ [B, T, H].

        When gradients are on and the attention has a step-loop form (Luong dot / general, see
        `StepAttention`), the gradients of the keys and values are summed once for all steps.
        """
        attend = None
        if torch.is_grad_enabled() and not self.attention.before_cell:
            attend = self.attention.step_loop(enc)
        attentional = []
        for emb_t in emb.unbind(1):  # unbind, not emb[:, t]: its backward is one stack, not T
            advance = self._advance(emb_t, state, enc, attend, masks=masks)
            attentional.append(advance.attentional)
            state = advance.state
        return torch.stack(attentional, dim=1)

    def _forward_fast(
        self, emb: Tensor, state: DecoderState, enc: EncoderOutput, masks: DropoutMasks | None
    ) -> Tensor:
        """Steps 3-5 for all positions at once (attention after the cell, no input feeding):
        emb [B, T, E] -> h̃ [B, T, H]."""
        rnn_state = RNNState(state.hidden, state.cell)
        layers = None if masks is None else masks.layers
        out = self.rnn(emb, state=rnn_state, masks=layers)  # [B, T, H]
        context, _ = self.attention(out.outputs, enc)  # [B, T, H]
        attentional = torch.tanh(self.combine(torch.cat([context, out.outputs], -1)))
        return self._drop_attentional(attentional, masks)


def _check_step_inputs(prev_ids: Tensor, state: DecoderState, enc: EncoderOutput) -> None:
    """prev_ids [B*K], state.hidden [L, B*K, H] and enc.states [B, S, H] must agree on B*K
    and H, K >= 1 rows per sentence (beam search's beams, rows b*K .. b*K+K-1)."""
    batch, _, hidden = enc.states.shape
    if prev_ids.dim() != 1 or prev_ids.size(0) == 0 or prev_ids.size(0) % batch:
        raise ValueError(
            f"prev_ids must be [B*K] with B = {batch} sentences, got {tuple(prev_ids.shape)}"
        )
    rows = prev_ids.size(0)
    if state.hidden.dim() != 3 or state.hidden.shape[1:] != (rows, hidden):
        raise ValueError(
            f"state.hidden must be [L, {rows}, {hidden}], got {tuple(state.hidden.shape)}"
        )


def _check_forward_inputs(tgt_in: Tensor, enc: EncoderOutput) -> None:
    """tgt_in must be [B, T] ids with the encoder output's B."""
    if tgt_in.dim() != 2 or tgt_in.size(0) != enc.states.size(0):
        raise ValueError(
            f"tgt_in must be [B, T] with B={enc.states.size(0)}, got {tuple(tgt_in.shape)}"
        )
