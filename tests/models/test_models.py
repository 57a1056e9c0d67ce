"""Seq2Seq as a whole: every recipe combination trains, forward equals step, padding does not
leak, reorder commutes with step, tying and sharing, and a tiny model learns a tiny task."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from nmtkit.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmtkit.models import DecoderState, EncoderOutput, Seq2Seq, build_model
from nmtkit.models.cells import PeepholeLSTM, PeepholeLSTMCell
from nmtkit.models.decoder import _check_forward_inputs, _check_step_inputs
from nmtkit.models.encoder import _check_encoder_inputs
from nmtkit.recipe import ModelConfig

CELLS = ["lstm", "gru", "peephole_lstm", "layernorm_lstm", "layernorm_gru"]
LOOP_CELLS = ["peephole_lstm", "layernorm_lstm", "layernorm_gru"]  # Python step loops
ATTENTIONS = ["none", "bahdanau", "luong_dot", "luong_general", "luong_concat", "multihead"]
FEEDINGS = ["none", "concat", "linear", "gated"]
INITS = ["final", "bridge", "mean", "zeros"]
LUONG = ["luong_dot", "luong_general", "luong_concat"]
VOCAB = 20


def tiny_config(**overrides: object) -> ModelConfig:
    base: dict[str, object] = {
        "embed_size": 8,
        "hidden_size": 12,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "attention_heads": 2,
        "dropout": 0.0,
    }
    return ModelConfig(**{**base, **overrides})


def tiny_model(seed: int = 0, **overrides: object) -> Seq2Seq:
    torch.manual_seed(seed)
    return build_model(tiny_config(**overrides), VOCAB, VOCAB)


def random_batch(lens: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random real ids (>= 4) right-padded with PAD_ID: ids [B, max(lens)], lens [B]."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lens), max(lens)), PAD_ID)
    for b, n in enumerate(lens):
        ids[b, :n] = torch.randint(4, VOCAB, (n,), generator=gen)
    return ids, torch.tensor(lens)


def step_loop(model: Seq2Seq, enc: EncoderOutput, tgt_in: Tensor) -> Tensor:
    """Log-probs [B, T, V] from a loop of decoder.step over the given target inputs."""
    state = model.decoder.init_state(enc)
    log_probs = []
    for t in range(tgt_in.size(1)):
        out = model.decoder.step(tgt_in[:, t], state, enc)
        log_probs.append(out.log_probs)
        state = out.state
    return torch.stack(log_probs, dim=1)


# ----------------------------------------------------------------------- every combination

# the layer-normalised cells on a diagonal (every attention and feeding once), to stay fast
GRID = list(itertools.product(CELLS[:3], ATTENTIONS, FEEDINGS, INITS)) + [
    (cell, attention, feeding, INITS[i % 4])
    for cell in CELLS[3:]
    for i, (attention, feeding) in enumerate(itertools.product(ATTENTIONS, FEEDINGS))
]


def grid_model(index: int, combo: tuple[str, str, str, str], **overrides: object) -> Seq2Seq:
    """Model number `index` of the grid: the combination, with depth, direction, residual
    connections and tying varied by the index."""
    cell, attention, feeding, init = combo
    return tiny_model(
        index,
        **{
            "cell": cell,
            "attention": attention,
            "input_feeding": feeding,
            "init": init,
            "bidirectional": index % 2 == 0,
            "encoder_layers": 1 + index % 3,
            "decoder_layers": 1 + (index // 2) % 2,
            "residual": index % 5 == 0,
            "tie_embeddings": index % 3 != 1,
            **overrides,
        },
    )


@pytest.mark.parametrize(("index", "combo"), list(enumerate(GRID)), ids=["-".join(c) for c in GRID])
def test_every_combination_trains_one_step(index: int, combo: tuple[str, str, str, str]) -> None:
    model = grid_model(index, combo, dropout=0.1).train()
    src, src_lens = random_batch([5, 3, 4], seed=index)
    tgt, _ = random_batch([4, 2, 3], seed=index + 1)
    logits = model(src, src_lens, tgt[:, :-1])
    assert logits.shape == (3, 3, VOCAB)
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), tgt[:, 1:].reshape(-1), ignore_index=PAD_ID)
    loss.backward()
    assert torch.isfinite(loss)
    for name, param in model.named_parameters():  # shared / tied Parameters are listed once
        assert param.grad is not None, f"{name} has no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"


# ------------------------------------------------------------------- forward equals step

EQUIVALENCE = [
    (CELLS[i % len(CELLS)], attention, feeding, INITS[i % 4])
    for i, (attention, feeding) in enumerate(itertools.product(ATTENTIONS, FEEDINGS))
]


@pytest.mark.parametrize("combo", EQUIVALENCE, ids=["-".join(c) for c in EQUIVALENCE])
def test_forward_equals_step_loop(combo: tuple[str, str, str, str]) -> None:
    cell, attention, feeding, init = combo
    model = tiny_model(
        cell=cell, attention=attention, input_feeding=feeding, init=init, decoder_layers=2
    ).eval()
    src, src_lens = random_batch([6, 2, 4])
    tgt_in, _ = random_batch([5, 5, 3], seed=1)
    with torch.no_grad():
        enc = model.encode(src, src_lens)
        expected = step_loop(model, enc, tgt_in)
        log_probs = model.decoder(tgt_in, enc).log_softmax(-1)
    torch.testing.assert_close(log_probs, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", [*LUONG, "multihead", "none"])
def test_fast_path_equals_step_loop(cell: str, attention: str) -> None:
    model = tiny_model(
        cell=cell, attention=attention, input_feeding="none", decoder_layers=2, residual=True
    ).eval()
    assert model.decoder.fast_path_allowed
    src, src_lens = random_batch([6, 2, 4])
    tgt_in, _ = random_batch([5, 5, 3], seed=1)
    with torch.no_grad():
        enc = model.encode(src, src_lens)
        fast = model.decoder(tgt_in, enc, fast_path=True)
        loop = model.decoder(tgt_in, enc, fast_path=False)
        steps = step_loop(model, enc, tgt_in)
    torch.testing.assert_close(fast, loop, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.log_softmax(-1), steps, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("attention", "feeding"), [("bahdanau", "none"), ("luong_dot", "concat")])
def test_fast_path_refused_where_steps_depend_on_each_other(attention: str, feeding: str) -> None:
    model = tiny_model(attention=attention, input_feeding=feeding)
    assert not model.decoder.fast_path_allowed
    src, src_lens = random_batch([3])
    with pytest.raises(ValueError, match="fast path"):
        model.decoder(src, model.encode(src, src_lens), fast_path=True)


# ------------------------------------------------------------------- padding invariance

PADDING = [(cell, attention) for cell in CELLS for attention in ATTENTIONS]


@pytest.mark.parametrize(("cell", "attention"), PADDING, ids=["-".join(c) for c in PADDING])
def test_padding_does_not_change_a_sentence(cell: str, attention: str) -> None:
    feeding = FEEDINGS[(CELLS.index(cell) + ATTENTIONS.index(attention)) % 4]
    model = tiny_model(
        cell=cell, attention=attention, input_feeding=feeding, init="mean", encoder_layers=2
    ).eval()
    src, src_lens = random_batch([3, 6, 5])
    tgt_in, _ = random_batch([2, 5, 4], seed=1)
    with torch.no_grad():
        batched = model(src, src_lens, tgt_in)[0, :2]
        alone = model(src[:1, :3], src_lens[:1], tgt_in[:1, :2])[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------- reorder and select


@pytest.mark.parametrize(
    ("cell", "attention", "feeding"),
    [
        ("lstm", "bahdanau", "gated"),
        ("gru", "luong_general", "concat"),
        ("peephole_lstm", "multihead", "linear"),
        ("lstm", "none", "none"),
        ("layernorm_gru", "bahdanau", "gated"),
        ("layernorm_lstm", "luong_dot", "concat"),
    ],
)
def test_reorder_commutes_with_step(cell: str, attention: str, feeding: str) -> None:
    model = tiny_model(cell=cell, attention=attention, input_feeding=feeding, decoder_layers=2)
    model.eval()
    src, src_lens = random_batch([5, 2, 4])
    prev, _ = random_batch([2, 2, 2], seed=1)
    index = torch.tensor([2, 0, 0, 1])
    with torch.no_grad():
        enc = model.encode(src, src_lens)
        state = model.decoder.step(prev[:, 0], model.decoder.init_state(enc), enc).state
        first = model.decoder.step(prev[:, 1], state, enc)
        second = model.decoder.step(
            prev[index, 1], model.decoder.reorder(state, index), enc.select(index)
        )
    torch.testing.assert_close(second.log_probs, first.log_probs[index])
    expected = model.decoder.reorder(first.state, index)
    for got, want in zip(second.state, expected, strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            torch.testing.assert_close(got, want)
    if first.attention is None:
        assert second.attention is None
    else:
        torch.testing.assert_close(second.attention, first.attention[index])


def test_encoder_output_select_covers_every_batch_tensor() -> None:
    model = tiny_model(cell="lstm", attention="luong_general", encoder_layers=2)
    src, src_lens = random_batch([5, 2, 4])
    enc = model.encode(src, src_lens)
    index = torch.tensor([1, 1])
    picked = enc.select(index)
    assert picked.keys is not None and enc.keys is not None
    torch.testing.assert_close(picked.keys, enc.keys[index])
    torch.testing.assert_close(picked.hidden, enc.hidden[:, index])
    assert picked.lengths.tolist() == [2, 2]
    assert picked.mask.tolist() == [[True, True, False, False, False]] * 2


# ----------------------------------------------------------------- embeddings and outputs


@pytest.mark.parametrize("embed_size", [8, 12])
def test_tied_output_layer_uses_the_target_embedding(embed_size: int) -> None:
    model = tiny_model(tie_embeddings=True, embed_size=embed_size)
    assert model.decoder.output.proj.weight is model.tgt_embed.weight
    has_pre = isinstance(model.decoder.output.pre, torch.nn.Linear)
    assert has_pre == (embed_size != 12)


def test_shared_embeddings_are_one_parameter() -> None:
    model = tiny_model(share_embeddings=True, tie_embeddings=True)
    assert model.src_embed.weight is model.tgt_embed.weight
    assert model.decoder.output.proj.weight is model.src_embed.weight
    untied = tiny_model()
    assert untied.src_embed.weight is not untied.tgt_embed.weight


def test_sharing_needs_equal_vocabularies() -> None:
    with pytest.raises(ValueError, match="share_embeddings"):
        build_model(tiny_config(share_embeddings=True), 20, 30)
    model = build_model(tiny_config(), 20, 30)  # unshared: different sizes are fine
    src, src_lens = random_batch([3])
    assert model(src, src_lens, torch.tensor([[BOS_ID, 25]])).shape == (1, 2, 30)


def test_xavier_initialisation() -> None:
    """`param_init: xavier` keeps torch's RNN init and sets forget-gate biases to 1."""
    model = tiny_model(cell="lstm", encoder_layers=2, param_init="xavier")
    assert torch.all(model.src_embed.weight[PAD_ID] == 0)
    assert torch.all(model.tgt_embed.weight[PAD_ID] == 0)
    lstm = model.encoder.rnn.blocks[0]
    assert isinstance(lstm, torch.nn.LSTM)
    size = lstm.hidden_size
    biases = dict(lstm.named_parameters())
    assert torch.all(biases["bias_ih_l1"][size : 2 * size] == 1)
    assert torch.all(biases["bias_hh_l1"][size : 2 * size] == 0)
    stack = tiny_model(cell="peephole_lstm", param_init="xavier").decoder.rnn.blocks[0]
    assert isinstance(stack, PeepholeLSTM)
    peephole = stack.cells[0]
    assert isinstance(peephole, PeepholeLSTMCell)
    assert torch.all(peephole.bias[12:24] == 1)


def test_embed_dropout_defaults_to_dropout() -> None:
    model = tiny_model(dropout=0.3)
    assert model.encoder.embed_dropout.p == 0.3
    assert tiny_model(dropout=0.3, embed_dropout=0.1).decoder.embed_dropout.p == 0.1


# ------------------------------------------------------------------------- shape contracts


def test_shape_checks_reject_mismatched_inputs() -> None:
    model = tiny_model()
    src, src_lens = random_batch([4, 2])
    with pytest.raises(ValueError, match="src must be"):
        _check_encoder_inputs(src[0], src_lens)
    with pytest.raises(ValueError, match="src_lens"):
        _check_encoder_inputs(src, src_lens[:1])
    enc = model.encode(src, src_lens)
    state = model.decoder.init_state(enc)
    with pytest.raises(ValueError, match="prev_ids"):
        _check_step_inputs(src[:, 0:1], state, enc)
    with pytest.raises(ValueError, match=r"state\.hidden"):
        _check_step_inputs(src[:, 0], DecoderState(state.hidden[:, :1], None, None), enc)
    with pytest.raises(ValueError, match="tgt_in"):
        _check_forward_inputs(src[:1], enc)


def test_autocast_keeps_masks_exact() -> None:
    model = tiny_model(attention="luong_general", input_feeding="concat").eval()
    src, src_lens = random_batch([5, 2])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        enc = model.encode(src, src_lens)
        out = model.decoder.step(torch.full((2,), BOS_ID), model.decoder.init_state(enc), enc)
    assert out.log_probs.dtype == torch.float32 and torch.isfinite(out.log_probs).all()
    assert out.attention is not None
    assert torch.all(out.attention[1, 2:] == 0)


# --------------------------------------------------------------------------- a tiny task


def test_tiny_model_learns_to_reverse() -> None:
    """8 random sequences over 10 symbols, learnt well enough for greedy decoding to be exact."""
    torch.manual_seed(0)
    lens = torch.randint(3, 7, (8,)).tolist()
    src = torch.full((8, 6), PAD_ID)
    tgt = torch.full((8, 8), PAD_ID)  # BOS + reversed source + EOS
    for b, n in enumerate(lens):
        seq = torch.randint(4, 14, (n,))
        src[b, :n] = seq
        tgt[b, : n + 2] = torch.cat([torch.tensor([BOS_ID]), seq.flip(0), torch.tensor([EOS_ID])])
    src_lens = torch.tensor(lens)
    config = tiny_config(
        embed_size=16, hidden_size=32, attention="luong_general", input_feeding="concat"
    )
    model = build_model(config, 14, 14)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        logits = model(src, src_lens, tgt[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 14), tgt[:, 1:].reshape(-1), ignore_index=PAD_ID)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        enc = model.encode(src, src_lens)
        state = model.decoder.init_state(enc)
        prev, hyp = torch.full((8,), BOS_ID), []
        for _ in range(7):
            out = model.decoder.step(prev, state, enc)
            prev, state = out.log_probs.argmax(-1), out.state
            hyp.append(prev)
    hyp_ids = torch.stack(hyp, dim=1)
    for b, n in enumerate(lens):
        assert hyp_ids[b, : n + 1].tolist() == tgt[b, 1 : n + 2].tolist()


# ------------------------------------------------------------------------------------ GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ["bahdanau", "luong_general", "multihead"])
def test_cuda_matches_cpu_and_autocast_keeps_masks(cell: str, attention: str) -> None:
    feeding = "none" if attention == "luong_general" else "concat"  # fast path and loop
    model = tiny_model(cell=cell, attention=attention, input_feeding=feeding, encoder_layers=2)
    model.eval()
    src, src_lens = random_batch([6, 2, 4])
    tgt_in, _ = random_batch([5, 5, 3], seed=1)
    with torch.no_grad():
        expected = model(src, src_lens, tgt_in)
        model.cuda()
        got = model(src.cuda(), src_lens.cuda(), tgt_in.cuda())
        torch.testing.assert_close(got.cpu(), expected, atol=1e-3, rtol=1e-3)
        for dtype in (torch.float16, torch.bfloat16):
            with torch.autocast("cuda", dtype=dtype):
                enc = model.encode(src.cuda(), src_lens)  # lengths may stay on the CPU
                state = model.decoder.init_state(enc)
                out = model.decoder.step(tgt_in[:, 0].cuda(), state, enc)
                logits = model(src.cuda(), src_lens.cuda(), tgt_in.cuda())
            assert torch.isfinite(logits).all() and torch.isfinite(out.log_probs).all()
            assert out.attention is not None and torch.all(out.attention[1, 2:] == 0)
            torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, device="cuda"))


def test_param_init_uniform_bounds_every_parameter() -> None:
    """`param_init: uniform` (the default) draws every parameter from U(-r, r), padding rows
    zero, whatever the cell and attention."""
    for cell, attention in [("lstm", "multihead"), ("peephole_lstm", "bahdanau")]:
        _check_uniform(tiny_model(cell=cell, attention=attention, init_range=0.05))


def _check_uniform(model: Seq2Seq) -> None:
    for name, param in model.named_parameters():
        assert param.abs().max() <= 0.05, name
        assert param.std() > 0.01, name  # drawn, not left at zero
    assert model.src_embed.weight[PAD_ID].abs().sum() == 0


# -------------------------------------------- the step loop's attention with summed K/V grads


def _loop_gradients(model: Seq2Seq, deferred: bool) -> list[Tensor]:
    """Gradients of a teacher-forced step-loop loss w.r.t. every parameter, with the
    attention's StepAttention (deferred) or with plain step-by-step attention."""
    src, src_lens = random_batch([6, 2, 4])
    tgt_in, _ = random_batch([5, 5, 3], seed=1)
    target, _ = random_batch([5, 5, 3], seed=2)
    attention = model.decoder.attention
    original = attention.step_loop
    if not deferred:
        attention.step_loop = lambda enc: None  # type: ignore[method-assign]
    try:
        logits = model(src, src_lens, tgt_in)
    finally:
        attention.step_loop = original  # type: ignore[method-assign]
    loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD_ID)
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        g if g is not None else torch.zeros_like(p)
        for g, p in zip(torch.autograd.grad(loss, params, allow_unused=True), params, strict=True)
    ]


@pytest.mark.parametrize("attention", ["luong_dot", "luong_general"])
@pytest.mark.parametrize("feeding", ["concat", "gated"])
def test_step_attention_gradients_equal_plain_attention(attention: str, feeding: str) -> None:
    """Summing the keys' and values' gradients once (StepAttention) changes no gradient."""
    model = tiny_model(attention=attention, input_feeding=feeding, decoder_layers=2)
    assert model.decoder.attention.step_loop(model.encode(*random_batch([3]))) is not None
    deferred = _loop_gradients(model, deferred=True)
    plain = _loop_gradients(model, deferred=False)
    for got, expected in zip(deferred, plain, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_step_attention_under_autocast_matches_fp32() -> None:
    model = tiny_model(attention="luong_general", input_feeding="concat")
    expected = _loop_gradients(model, deferred=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _loop_gradients(model, deferred=True)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype
        torch.testing.assert_close(g, e, atol=0.05, rtol=0.05)


# ------------------------------------------ inference: the embedding folded into the first layer


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ["bahdanau", "luong_general", "none"])
@pytest.mark.parametrize("feeding", FEEDINGS)
def test_folded_embedding_step_equals_the_plain_step(
    cell: str, attention: str, feeding: str
) -> None:
    """At inference the first layer's share of e_t comes from a [V, G] table; the step's
    output and state are those of the plain step (which concatenates [e_t; ...])."""
    model = tiny_model(cell=cell, attention=attention, input_feeding=feeding, decoder_layers=2)
    model.eval()
    src, src_lens = random_batch([6, 2, 4])
    prev = torch.tensor([BOS_ID, 5, 7])
    with torch.no_grad():
        enc = model.encode(src, src_lens)
        state = model.decoder.init_state(enc)
        folded = model.decoder.step(prev, state, enc)
        table = model.decoder._folded_embedding()
        assert (table is None) == (cell in LOOP_CELLS)
        model.decoder._folded_embedding = lambda: None  # type: ignore[method-assign]
        plain = model.decoder.step(prev, state, enc)
    torch.testing.assert_close(folded.log_probs, plain.log_probs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(folded.state.hidden, plain.state.hidden, atol=1e-6, rtol=1e-5)


def test_folded_embedding_is_recomputed_when_the_weights_change() -> None:
    model = tiny_model(attention="luong_general", input_feeding="concat").eval()
    with torch.no_grad():
        first = model.decoder._folded_embedding()
        assert first is not None and model.decoder._folded_embedding() is first  # cached
        model.decoder.embed.weight.add_(1.0)  # an optimizer step changes weights in place
        second = model.decoder._folded_embedding()
    assert second is not None and not torch.equal(first, second)
    model.train()
    with torch.no_grad():
        assert model.decoder._folded_embedding() is None  # training mode: dropout, no table
    with torch.enable_grad():
        assert model.eval().decoder._folded_embedding() is None  # gradients need the product
