"""Word dropout and variational dropout in the model: off is today's model bit for bit (random
stream included), eval mode is untouched, the masks are what they claim, and teacher forcing
equals a loop of steps in training too when the steps get the masks `forward` drew."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from nmtkit.data.tokenizer import BOS_ID, PAD_ID, UNK_ID
from nmtkit.models import EncoderOutput, Seq2Seq
from nmtkit.models.decoder import DropoutMasks
from nmtkit.models.rnn import RNNState, StackedRNN
from tests.models.test_models import CELLS, VOCAB, random_batch, tiny_model

OFF = {"word_dropout": 0.0, "word_dropout_mode": "unk", "variational_dropout": False}


def with_bos(tgt: Tensor) -> Tensor:
    return torch.cat([torch.full((tgt.size(0), 1), BOS_ID), tgt], dim=1)


def train_step(model: Seq2Seq, seed: int) -> tuple[Tensor, list[Tensor], Tensor]:
    """Logits, gradients and the next random numbers of one training forward/backward."""
    src, src_lens = random_batch([6, 2, 4])
    tgt_in, _ = random_batch([5, 5, 3], seed=1)
    torch.manual_seed(seed)
    logits = model.train()(src, src_lens, with_bos(tgt_in))
    logits.pow(2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return logits, grads, torch.rand(4)


# ------------------------------------------------------------------------------ off is off


@pytest.mark.parametrize(
    ("cell", "attention", "feeding"),
    [("lstm", "bahdanau", "concat"), ("gru", "luong_general", "none"), ("lstm", "none", "none")],
)
def test_defaults_are_the_model_with_every_option_explicitly_off(
    cell: str, attention: str, feeding: str
) -> None:
    options = {"cell": cell, "attention": attention, "input_feeding": feeding, "dropout": 0.3}
    options |= {"encoder_layers": 2, "decoder_layers": 2}
    default, explicit = tiny_model(**options), tiny_model(**options, **OFF)
    names = [(name, p.shape) for name, p in default.named_parameters()]
    assert names == [(name, p.shape) for name, p in explicit.named_parameters()]
    for a, b in zip(default.parameters(), explicit.parameters(), strict=True):
        assert torch.equal(a, b)
    logits, grads, after = train_step(default, seed=5)
    logits_off, grads_off, after_off = train_step(explicit, seed=5)
    assert torch.equal(logits, logits_off) and torch.equal(after, after_off)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_off, strict=True))


@pytest.mark.parametrize("cell", ["lstm", "layernorm_gru"])
def test_off_or_eval_draws_no_random_numbers(cell: str) -> None:
    """With every dropout probability 0 training draws nothing; in eval mode nothing is drawn
    whatever the options; and word dropout leaves an eval-mode model's output as it was."""
    src, src_lens = random_batch([6, 2, 4])
    tgt_in = with_bos(random_batch([5, 5, 3], seed=1)[0])
    zero = tiny_model(cell=cell, dropout=0.0, variational_dropout=True, decoder_layers=2)
    on = {"dropout": 0.3, "word_dropout": 0.3, "variational_dropout": True}
    for model in (zero.train(), tiny_model(cell=cell, decoder_layers=2, **on).eval()):
        state = torch.get_rng_state()
        model(src, src_lens, tgt_in)
        assert torch.equal(torch.get_rng_state(), state)
    plain = tiny_model(cell=cell, dropout=0.3).eval()
    for mode in ("unk", "zero"):
        words = tiny_model(cell=cell, dropout=0.3, word_dropout=0.5, word_dropout_mode=mode)
        with torch.no_grad():
            assert torch.equal(words.eval()(src, src_lens, tgt_in), plain(src, src_lens, tgt_in))


# ---------------------------------------------------------------------------- word dropout


def test_word_dropout_reaches_the_embeddings_at_rate_p_never_at_pad_or_bos() -> None:
    model = tiny_model(word_dropout=0.25).train()
    seen: dict[str, Tensor] = {}
    model.src_embed.register_forward_hook(lambda m, args, out: seen.__setitem__("src", args[0]))
    model.tgt_embed.register_forward_hook(lambda m, args, out: seen.__setitem__("tgt", args[0]))
    lens = torch.randint(1, 40, (64,), generator=torch.Generator().manual_seed(0)).tolist()
    src, src_lens = random_batch(lens)
    tgt_in = with_bos(random_batch(lens, seed=1)[0])
    torch.manual_seed(0)
    model(src, src_lens, tgt_in)
    for side, ids in (("src", src), ("tgt", tgt_in)):
        got = seen[side]
        real = (ids != PAD_ID) & (ids != BOS_ID)
        assert torch.equal(got[~real], ids[~real]), f"{side}: padding or BOS was touched"
        dropped = (got != ids)[real]
        assert torch.all(got[real][dropped] == UNK_ID)
        assert abs(dropped.float().mean().item() - 0.25) < 0.03, side


def test_word_dropout_zero_mode_zeroes_whole_embeddings() -> None:
    model = tiny_model(word_dropout=0.5, word_dropout_mode="zero").train()
    src, src_lens = random_batch([30, 20])
    seen: list[Tensor] = []
    model.encoder.rnn.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    torch.manual_seed(0)
    dropped = model.encoder.word_dropout.draw(src)
    torch.manual_seed(0)
    model.encode(src, src_lens)
    assert dropped is not None and dropped.any()
    emb = seen[0]  # dropout 0: the embeddings as the RNN sees them
    assert torch.all(emb[dropped] == 0)
    assert torch.all(emb[~dropped & (src != PAD_ID)].abs().sum(-1) > 0)


# ----------------------------------------------------------------------- variational masks


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("residual", [False, True])
def test_variational_stack_masks_are_constant_along_time(cell: str, residual: bool) -> None:
    torch.manual_seed(0)
    rnn = StackedRNN(cell, 5, 6, num_layers=3, dropout=0.5, residual=residual, variational=True)  # type: ignore[arg-type]
    assert len(rnn.blocks) == 3  # one module per layer: the fused stack cannot do this
    seen: list[tuple[Tensor, Tensor]] = []
    rnn.blocks[1].register_forward_hook(lambda m, args, out: seen.append((args[0], out[0])))
    rnn.blocks[0].register_forward_hook(lambda m, args, out: seen.append((args[0], out[0])))
    rnn.train()(torch.randn(4, 7, 5) + 2.0)
    (_, below), (above, _) = seen[0], seen[1]  # block 0's output, block 1's input
    ratio = above / below  # [B, T, H]: 0 or 1 / (1 - p), the same at every step
    assert torch.all((ratio == 0) | torch.isclose(ratio, torch.tensor(2.0)))
    assert torch.equal(ratio, ratio[:, :1].expand_as(ratio))
    assert 0 < (ratio == 0).float().mean() < 1


@pytest.mark.parametrize("cell", CELLS)
def test_variational_stack_steps_equal_forward_with_the_same_masks(cell: str) -> None:
    torch.manual_seed(0)
    rnn = StackedRNN(cell, 5, 6, num_layers=3, dropout=0.5, variational=True).train()  # type: ignore[arg-type]
    x = torch.randn(2, 4, 5)
    masks = rnn.layer_masks(2, x.device)
    assert masks is not None and len(masks) == 2 and masks[0].shape == (2, 6)
    whole = rnn(x, masks=masks)
    state = RNNState(torch.zeros(3, 2, 6), torch.zeros(3, 2, 6) if rnn.has_cell else None)
    for t in range(4):
        out = rnn.step(x[:, t], state, masks=masks)
        torch.testing.assert_close(out.outputs, whole.outputs[:, t])
        state = out.state
    torch.testing.assert_close(state.hidden, whole.state.hidden)
    with pytest.raises(ValueError, match="layer_masks"):
        rnn.step(x[:, 0], state)


def test_variational_embedding_masks_are_constant_along_time() -> None:
    model = tiny_model(dropout=0.5, variational_dropout=True).train()
    src, src_lens = random_batch([8, 8, 8])
    seen: list[Tensor] = []
    model.encoder.rnn.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    model.encode(src, src_lens)
    ratio = seen[0] / model.src_embed(src)  # [B, S, E]
    assert torch.equal(ratio, ratio[:, :1].expand_as(ratio))
    masks = model.decoder.draw_masks(with_bos(src))
    assert masks is not None and masks.words is None
    assert masks.embed is not None and masks.embed.shape == (3, 8)
    assert masks.output is not None and masks.output.shape == (3, 12)


# ------------------------------------------------------------- forward equals step, training


def masked_step_loop(model: Seq2Seq, enc: EncoderOutput, tgt_in: Tensor, masks: DropoutMasks):
    """Log-probs [B, T, V] of a loop of decoder.step, each step given its masks."""
    state = model.decoder.init_state(enc)
    log_probs = []
    for t in range(tgt_in.size(1)):
        out = model.decoder.step(tgt_in[:, t], state, enc, masks=masks.at(t))
        log_probs.append(out.log_probs)
        state = out.state
    return torch.stack(log_probs, dim=1)


TRAINING = [
    ("lstm", "bahdanau", "concat", {"word_dropout": 0.3, "dropout": 0.0}),
    (
        "gru",
        "luong_general",
        "gated",
        {"word_dropout": 0.3, "word_dropout_mode": "zero", "dropout": 0.0},
    ),
    ("lstm", "luong_dot", "concat", {"variational_dropout": True}),
    ("gru", "bahdanau", "none", {"variational_dropout": True, "residual": True}),
    ("peephole_lstm", "multihead", "linear", {"variational_dropout": True}),
    ("layernorm_lstm", "bahdanau", "concat", {"variational_dropout": True, "word_dropout": 0.3}),
    ("layernorm_gru", "luong_general", "concat", {"word_dropout": 0.3, "dropout": 0.0}),
]


@pytest.mark.parametrize(("cell", "attention", "feeding", "options"), TRAINING)
def test_training_forward_equals_steps_given_its_masks(
    cell: str, attention: str, feeding: str, options: dict
) -> None:
    options = {"dropout": 0.3, **options}
    model = tiny_model(
        cell=cell, attention=attention, input_feeding=feeding, decoder_layers=2, **options
    ).train()
    src, src_lens = random_batch([6, 2, 4])
    tgt_in = with_bos(random_batch([5, 5, 3], seed=1)[0])
    enc = model.encode(src, src_lens)
    torch.manual_seed(3)
    expected = model.decoder(tgt_in, enc, fast_path=False).log_softmax(-1)
    torch.manual_seed(3)
    masks = model.decoder.draw_masks(tgt_in)
    assert masks is not None
    got = masked_step_loop(model, enc, tgt_in, masks)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.manual_seed(4)  # another draw gives another result: the masks were used
    assert not torch.allclose(model.decoder(tgt_in, enc, fast_path=False), expected)


@pytest.mark.parametrize("cell", ["lstm", "layernorm_lstm", "layernorm_gru"])
def test_variational_fast_path_equals_loop_in_training(cell: str) -> None:
    model = tiny_model(
        cell=cell,
        attention="luong_general",
        input_feeding="none",
        decoder_layers=2,
        dropout=0.3,
        word_dropout=0.2,
        variational_dropout=True,
    ).train()
    src, src_lens = random_batch([6, 2, 4])
    tgt_in = with_bos(random_batch([5, 5, 3], seed=1)[0])
    enc = model.encode(src, src_lens)
    torch.manual_seed(7)
    fast = model.decoder(tgt_in, enc, fast_path=True)
    torch.manual_seed(7)
    loop = model.decoder(tgt_in, enc, fast_path=False)
    torch.testing.assert_close(fast, loop, atol=1e-5, rtol=1e-5)


def test_variational_training_step_without_masks_is_refused() -> None:
    model = tiny_model(dropout=0.3, variational_dropout=True).train()
    src, src_lens = random_batch([4, 2])
    enc = model.encode(src, src_lens)
    with pytest.raises(ValueError, match="draw_masks"):
        model.decoder.step(torch.full((2,), BOS_ID), model.decoder.init_state(enc), enc)
    model.eval()  # search: no dropout, no masks needed
    out = model.decoder.step(torch.full((2,), BOS_ID), model.decoder.init_state(enc), enc)
    assert out.log_probs.shape == (2, VOCAB)


def test_layernorm_parameters_keep_gain_one_bias_zero_under_uniform_init() -> None:
    model = tiny_model(cell="layernorm_lstm", init_range=0.05, encoder_layers=2)
    norms = {n: p for n, p in model.named_parameters() if ".ln_" in n}
    assert norms and all(".cells." in n for n in norms)
    for name, param in norms.items():
        assert torch.all(param == (1.0 if name.endswith(".weight") else 0.0)), name
    for name, param in model.named_parameters():
        if name not in norms:
            assert param.abs().max() <= 0.05, name
