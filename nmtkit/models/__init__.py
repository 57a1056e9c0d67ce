"""Recurrent encoder-decoder models: `build_model(recipe.model, src_vocab, tgt_vocab)`."""

from nmtkit.models.decoder import DecoderState, StepOutput
from nmtkit.models.encoder import EncoderOutput
from nmtkit.models.seq2seq import Seq2Seq, build_model

__all__ = ["DecoderState", "EncoderOutput", "Seq2Seq", "StepOutput", "build_model"]
