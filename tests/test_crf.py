"""The masked CRF against brute-force enumeration of every tag path."""

import itertools

import pytest
import torch
from conftest import tiny_tagger
from torch.utils._python_dispatch import TorchDispatchMode
from torchcrf import CRF

from modeling_aioner import crf_marginals, crf_nll, pack, viterbi


def path_score(em, tags, start, end, trans):
    s = start[tags[0]] + em[0, tags[0]] + end[tags[-1]]
    for t in range(1, len(tags)):
        s = s + trans[tags[t - 1], tags[t]] + em[t, tags[t]]
    return s


def brute(em, start, end, trans):
    """log Z, best path and per-position marginals of one packed sequence by enumeration."""
    n, c = em.shape
    paths = list(itertools.product(range(c), repeat=n))
    scores = torch.stack([path_score(em, p, start, end, trans) for p in paths])
    log_z = torch.logsumexp(scores, 0)
    best = list(paths[int(scores.argmax())])
    probs = torch.exp(scores - log_z)
    marg = torch.zeros(n, c, dtype=em.dtype)
    for p, pr in zip(paths, probs):
        for t, tag in enumerate(p):
            marg[t, tag] += pr
    return log_z, best, marg


def random_case(seed, batch=3, length=9, labels=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, labels, generator=g, dtype=torch.float64)
    # Word starts scattered among padding, specials and continuation sub-words.
    word_mask = torch.rand(batch, length, generator=g) < 0.5
    word_mask[:, 0] = False  # [CLS] never takes part
    word_mask[0, 3] = True
    labels_ = torch.randint(0, labels, (batch, length), generator=g)
    return logits, word_mask, labels_


@pytest.mark.parametrize("seed", range(6))
def test_masked_crf_matches_brute_force(seed):
    model, _ = tiny_tagger(tasks={"T": ["A"]})  # 3 labels: B-A, I-A, O-T
    model.crf.double()
    with torch.no_grad():
        for p in (model.crf.start_transitions, model.crf.end_transitions, model.crf.transitions):
            p.normal_(generator=torch.Generator().manual_seed(seed + 100))
    logits, word_mask, labels = random_case(seed, labels=3)
    loss = model.loss(logits, labels.masked_fill(~word_mask, -100), word_mask)

    crf = model.crf
    expected, rows = 0.0, 0
    em, pmask = pack(logits, word_mask)
    tags, _ = pack(labels, word_mask)
    best = viterbi(
        em[word_mask.any(1)], pmask[word_mask.any(1)], crf.start_transitions, crf.end_transitions, crf.transitions
    )
    marg = crf_marginals(
        em[word_mask.any(1)], pmask[word_mask.any(1)], crf.start_transitions, crf.end_transitions, crf.transitions
    )
    r = 0
    for b in range(logits.size(0)):
        sel = word_mask[b].nonzero().squeeze(1)
        if len(sel) == 0:
            continue
        e = logits[b, sel]
        y = labels[b, sel].tolist()
        log_z, best_path, m = brute(e, crf.start_transitions, crf.end_transitions, crf.transitions)
        expected += log_z - path_score(e, y, crf.start_transitions, crf.end_transitions, crf.transitions)
        rows += 1
        n = len(sel)
        assert best[r, :n].tolist() == best_path
        torch.testing.assert_close(marg[r, :n], m)
        r += 1
    torch.testing.assert_close(loss, expected / rows)


def test_padding_does_not_change_the_loss_or_the_path():
    model, _ = tiny_tagger()
    ids = torch.tensor([[101, 30522, 2000, 3000, 4000, 30523, 102]])
    wm = torch.tensor([[0, 0, 1, 1, 1, 0, 0]], dtype=torch.bool)
    labels = torch.full_like(ids, -100)
    labels[wm] = torch.tensor([0, 1, 18])
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1)
    pmask = torch.cat([torch.ones_like(ids), torch.zeros(1, 5, dtype=torch.long)], 1)
    plabels = torch.cat([labels, torch.full((1, 5), -100)], 1)
    with torch.no_grad():
        a = model(input_ids=ids, labels=labels).loss
        b = model(input_ids=padded, attention_mask=pmask, labels=plabels).loss
        torch.testing.assert_close(a, b)
        pa = model.decode(ids, word_mask=wm)
        pb = model.decode(padded, pmask, word_mask=torch.cat([wm, torch.zeros(1, 5, dtype=torch.bool)], 1))
    assert pa == pb and len(pa[0]) == 3


def test_vectorized_viterbi_equals_pytorch_crf_decode():
    model, _ = tiny_tagger()
    g = torch.Generator().manual_seed(1)
    em = torch.randn(16, 30, 19, generator=g)
    lengths = torch.randint(1, 31, (16,), generator=g)
    mask = torch.arange(30)[None] < lengths[:, None]
    ours = viterbi(em, mask, model.crf.start_transitions, model.crf.end_transitions, model.crf.transitions)
    theirs = model.crf.decode(em, mask)
    for i, path in enumerate(theirs):
        assert ours[i, : len(path)].tolist() == path


def random_crf_batch(seed, batch=8, width=25, labels=19):
    g = torch.Generator().manual_seed(seed)
    crf = CRF(labels, batch_first=True).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_(0, 3, generator=g)
    em = (5 * torch.randn(batch, width, labels, generator=g, dtype=torch.float64)).requires_grad_()
    lengths = torch.randint(1, width + 1, (batch,), generator=g)
    lengths[0] = 1  # a one-word sentence: no transition at all
    mask = torch.arange(width)[None] < lengths[:, None]
    tags = torch.randint(0, labels, (batch, width), generator=g).masked_fill(~mask, 0)
    return crf, em, tags, mask


@pytest.mark.parametrize("seed", range(4))
def test_crf_nll_equals_pytorch_crf_in_value_and_gradients(seed):
    crf, em, tags, mask = random_crf_batch(seed)
    inputs = [em, crf.start_transitions, crf.end_transitions, crf.transitions]
    theirs = -crf(em, tags, mask=mask, reduction="sum")
    ours = crf_nll(em, tags, mask, crf.start_transitions, crf.end_transitions, crf.transitions)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-9)
    for a, b in zip(torch.autograd.grad(ours, inputs), torch.autograd.grad(theirs, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


class CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def test_crf_nll_dispatches_far_fewer_operations_than_pytorch_crf():
    """On a GPU every operation is a kernel launch paid for on the CPU: with pytorch-crf the loss was about
    half of a training step's operations (an H200 trained at 13-15 steps/s, bound by them)."""
    crf, em, tags, mask = random_crf_batch(0, batch=32, width=40)
    counts = []
    for loss in (
        lambda: -crf(em, tags, mask=mask, reduction="sum"),
        lambda: crf_nll(em, tags, mask, crf.start_transitions, crf.end_transitions, crf.transitions),
    ):
        with CountOps() as ops:
            loss().backward()
        counts.append(ops.count)
    theirs, ours = counts
    assert ours * 2 < theirs, counts


def test_allowed_labels_restrict_the_decoded_path():
    model, _ = tiny_tagger()
    scheme = model.config.scheme
    logits = torch.randn(2, 6, 19)
    wm = torch.ones(2, 6, dtype=torch.bool)
    allowed = scheme.allowed_label_ids("Chemical")
    for decoder_model in (model, tiny_tagger(decoder="softmax")[0]):
        paths = decoder_model.decode_emissions(logits, wm, allowed)
        assert {i for p in paths for i in p} <= set(allowed)


def test_softmax_head_uses_cross_entropy_over_words_only():
    model, _ = tiny_tagger(decoder="softmax")
    logits = torch.randn(1, 5, 19)
    wm = torch.tensor([[0, 1, 0, 1, 0]], dtype=torch.bool)
    labels = torch.tensor([[-100, 3, -100, 18, -100]])
    expected = torch.nn.functional.cross_entropy(logits[0, [1, 3]], torch.tensor([3, 18]))
    torch.testing.assert_close(model.loss(logits, labels, wm), expected)


def test_probability_space_marginals_match_log_space_and_fall_back_on_underflow():
    from modeling_aioner import _crf_marginals_log

    g = torch.Generator().manual_seed(3)
    em = torch.randn(7, 30, 19, generator=g, dtype=torch.float64) * 5
    em[..., 10:] += -1.0e4  # forbidden labels, as decode_emissions adds them
    lengths = torch.tensor([30, 1, 2, 17, 30, 5, 29])
    mask = torch.arange(30)[None] < lengths[:, None]
    start, end, trans = (torch.randn(*s, generator=g, dtype=torch.float64) * 3 for s in [(19,), (19,), (19, 19)])
    fast = crf_marginals(em, mask, start, end, trans)
    slow = _crf_marginals_log(em, mask, start, end, trans)
    torch.testing.assert_close(fast[mask], slow[mask])
    torch.testing.assert_close(fast[mask].sum(-1), torch.ones(int(mask.sum()), dtype=torch.float64))
    # Transition scores 2,000 nats apart underflow in probability space: the log-space answer is used.
    extreme = trans.clone()
    extreme[:, :] = -2000.0
    extreme[0, 0] = 0.0
    no_start = torch.full_like(start, 0.0)
    no_start[0] = -2000.0  # no path through label 0 survives in probability space
    calls = []
    import modeling_aioner

    real = modeling_aioner._crf_marginals_log
    modeling_aioner._crf_marginals_log = lambda *a: calls.append(1) or real(*a)
    try:
        out = crf_marginals(em, mask, no_start, end, extreme)
    finally:
        modeling_aioner._crf_marginals_log = real
    assert calls and torch.isfinite(out).all()
    start = no_start
    torch.testing.assert_close(out[mask], _crf_marginals_log(em, mask, start, end, extreme)[mask])
