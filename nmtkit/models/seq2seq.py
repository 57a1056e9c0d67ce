"""Seq2Seq = embeddings + encoder + bridge + decoder + output layer, built from the recipe.

    model = build_model(recipe.model, src_vocab_size=8000, tgt_vocab_size=8000)
    logits = model(src, src_lens, tgt_in)            # teacher forcing, [B, T, V]
    enc = model.encode(src, src_lens)                # search: then model.decoder.step(...)

Ownership: the encoder holds the source embedding; the decoder holds the target embedding, the
attention, the bridge and the output layer (it needs them all for `init_state` and `step`).
Shared embeddings are one module held by both; a tied output layer holds the target
embedding's weight Parameter itself.

Initialisation (`_initialise`, recipe `model.param_init`):
- `uniform` (default): every parameter U(-init_range, init_range), padding rows zero, except
  the layer-normalised cells' normalisations (nn.LayerNorm: gain 1, bias 0). This is
  Luong et al. (2015) and OpenNMT-py's `param_init 0.1`. On the 2-layer input-feeding model it
  learns about twice as fast per update as `xavier` (docs/dev/performance-notes.md).
- `xavier`: Linear weights Xavier-uniform, biases 0; embeddings U(-0.1, 0.1) with a zero padding
  row; nn.LSTM / nn.GRU keep torch's U(-1/√H, 1/√H); LSTM forget-gate biases are 1 (b_ih 1,
  b_hh 0; the peephole and layer-normalised cells do the same themselves, LayerNorm gains 1 and
  biases 0); nn.MultiheadAttention keeps its own Xavier initialisation for the input projection.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmtkit.data.tokenizer import PAD_ID
from nmtkit.models.attention import make_attention
from nmtkit.models.bridge import make_bridge
from nmtkit.models.decoder import OutputLayer, RNNDecoder
from nmtkit.models.encoder import EncoderOutput, RNNEncoder
from nmtkit.models.rnn import has_cell_state
from nmtkit.recipe import InitScheme, ModelConfig


class Seq2Seq(nn.Module):
    """A recurrent encoder-decoder with attention."""

    def __init__(self, encoder: RNNEncoder, decoder: RNNDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    @property
    def src_embed(self) -> nn.Embedding:
        return self.encoder.embed

    @property
    def tgt_embed(self) -> nn.Embedding:
        return self.decoder.embed

    def encode(self, src: Tensor, src_lens: Tensor) -> EncoderOutput:
        """src [B, S], src_lens [B] -> EncoderOutput, attention keys projected once here."""
        enc = self.encoder(src, src_lens)
        return enc._replace(keys=self.decoder.attention.project_keys(enc.states))

    def forward(
        self,
        src: Tensor,
        src_lens: Tensor,
        tgt_in: Tensor,
        *,
        positions: Tensor | None = None,
        project: bool = True,
    ) -> Tensor:
        """Teacher forcing: src [B, S], src_lens [B], tgt_in [B, T] -> logits [B, T, V].

        With `positions` (bool [B, T], True where a loss is taken) only those positions are
        projected: logits [N, V] in row-major order of the mask. Training uses this, so the
        output layer and the softmax never run on padding. With `project` False the decoder's
        attentional vectors come back instead of logits ([N, H]; training then applies the
        output layer inside the fused loss, `train.loss.projected_loss`).
        """
        enc = self.encode(src, src_lens)
        return self.decoder(tgt_in, enc, positions=positions, project=project)


def build_model(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """The model described by the recipe's `model:` section."""
    if cfg.share_embeddings and src_vocab_size != tgt_vocab_size:
        raise ValueError(
            f"share_embeddings needs one vocabulary, got source {src_vocab_size} and target "
            f"{tgt_vocab_size} (use tokenizer.joint: true)"
        )
    tgt_embed = nn.Embedding(tgt_vocab_size, cfg.embed_size, padding_idx=PAD_ID)
    src_embed = (
        tgt_embed
        if cfg.share_embeddings
        else nn.Embedding(src_vocab_size, cfg.embed_size, padding_idx=PAD_ID)
    )
    embed_dropout = cfg.embed_dropout if cfg.embed_dropout is not None else cfg.dropout
    encoder = RNNEncoder(
        src_embed,
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.encoder_layers,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        embed_dropout=embed_dropout,
        residual=cfg.residual,
        word_dropout=cfg.word_dropout,
        word_dropout_mode=cfg.word_dropout_mode,
        variational=cfg.variational_dropout,
    )
    decoder = RNNDecoder(
        tgt_embed,
        make_attention(cfg.attention, cfg.hidden_size, heads=cfg.attention_heads),
        make_bridge(
            cfg.init, cfg.hidden_size, cfg.decoder_layers, has_cell=has_cell_state(cfg.cell)
        ),
        OutputLayer(
            cfg.hidden_size,
            tgt_vocab_size,
            tied_size=cfg.embed_size if cfg.tie_embeddings else None,
        ),
        cell=cfg.cell,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.decoder_layers,
        input_feeding=cfg.input_feeding,
        dropout=cfg.dropout,
        embed_dropout=embed_dropout,
        residual=cfg.residual,
        word_dropout=cfg.word_dropout,
        word_dropout_mode=cfg.word_dropout_mode,
        variational=cfg.variational_dropout,
    )
    model = Seq2Seq(encoder, decoder)
    _initialise(model, cfg.param_init, cfg.init_range)
    if cfg.tie_embeddings:
        decoder.output.tie(tgt_embed)
    return model


def _initialise(model: nn.Module, scheme: InitScheme, init_range: float) -> None:
    """See the module docstring. Runs before tying, so the tied weight is the embedding's."""
    if scheme == "uniform":
        for param in model.parameters():
            nn.init.uniform_(param, -init_range, init_range)
        for module in model.modules():
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()  # gain 1, bias 0 (draws no random numbers)
        return
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.uniform_(module.weight, -0.1, 0.1)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LSTM):
            _set_forget_bias(module)


def _set_forget_bias(lstm: nn.LSTM) -> None:
    """Forget-gate bias 1 (gate order i, f, g, o): b_ih = 1, b_hh = 0 on the forget slice."""
    size = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("bias_ih"):
                param[size : 2 * size].fill_(1.0)
            elif name.startswith("bias_hh"):
                param[size : 2 * size].zero_()
