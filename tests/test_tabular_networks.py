"""The tabular GAN's faster training-step pieces compute the same functions as the plain forms they replace:
the shared-condition critic, the split-input gradient penalty, the mask-based LeakyReLU / dropout, the
gathered condition loss and the one-draw Gumbel activation (benchmarks/RESULTS.md, issue-2 speed)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from ganstream.trainers.encoding import Span
from ganstream.trainers.tabular.losses import gradient_penalty, interpolates
from ganstream.trainers.tabular.networks import Discriminator, DualDiscriminator, activate, condition_loss

DATA, COND, PAC, N = 7, 5, 4, 40


def _one_hot(n, width, gen):
    c = torch.zeros(n, width)
    c[torch.arange(n), torch.randint(0, width, (n,), generator=gen)] = 1.0
    return c


@pytest.mark.parametrize("critic", [Discriminator, DualDiscriminator])
def test_shared_condition_critic_equals_the_packed_one(critic):
    gen = torch.Generator().manual_seed(0)
    d = critic(DATA + COND, (16, 8), pac=PAC).eval()  # eval: no dropout, so both forms are deterministic
    real, fake, c = torch.randn(N, DATA, generator=gen), torch.randn(N, DATA, generator=gen), _one_hot(N, COND, gen)
    plain = torch.cat([d(torch.cat([real, c], 1)), d(torch.cat([fake, c], 1))])
    pairs, only_fake = d(torch.cat([real, fake]), fake, cond=c)
    torch.testing.assert_close(pairs, plain)
    torch.testing.assert_close(only_fake, plain[N // PAC:])


def test_shared_condition_critic_without_conditions():
    d = Discriminator(DATA, (8,), pac=PAC).eval()
    x = torch.randn(N, DATA)
    torch.testing.assert_close(d(x, cond=torch.zeros(N, 0))[0], d(x))


def test_split_input_gradient_penalty_equals_the_packed_one():
    gen = torch.Generator().manual_seed(1)
    d = Discriminator(DATA + COND, (16, 8), pac=PAC).eval()
    real, fake, c = torch.randn(N, DATA, generator=gen), torch.randn(N, DATA, generator=gen), _one_hot(N, COND, gen)
    reference = copy.deepcopy(d)  # the critic as it was: torch's own LeakyReLU
    for i, layer in enumerate(reference.net):
        if type(layer).__name__ == "_LeakyReLU":
            reference.net[i] = torch.nn.LeakyReLU(0.2)
    x_hat = interpolates(real, fake, PAC).detach()
    full = torch.cat([x_hat, c], 1).requires_grad_(True)
    grad = torch.autograd.grad(reference(full).sum(), full, create_graph=True)[0]
    plain = 10.0 * ((grad.reshape(N // PAC, -1).norm(2, dim=1) - 1) ** 2).mean()
    x_hat.requires_grad_(True)
    c_hat = c.clone().requires_grad_(True)
    _, scores_hat = d(torch.cat([real, fake]), x_hat, cond=c_hat)
    split = gradient_penalty(scores_hat, (x_hat, c_hat), PAC, 10.0)
    torch.testing.assert_close(split, plain)
    params = list(d.parameters())  # and the same gradient for the critic's weights (the double backward);
    # a first-layer bias does not move the input gradient (piecewise-linear critic): no gradient, i.e. zero
    g_split = torch.autograd.grad(split, params, retain_graph=True, allow_unused=True, materialize_grads=True)
    g_plain = torch.autograd.grad(plain, list(reference.parameters()), retain_graph=True, allow_unused=True,
                                  materialize_grads=True)
    for a, b in zip(g_split, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_interpolates_mix_each_pack_with_one_weight():
    real, fake = torch.zeros(N, DATA), torch.ones(N, DATA)
    packs = interpolates(real, fake, PAC).reshape(N // PAC, -1)
    assert ((packs >= 0) & (packs <= 1)).all()
    assert (packs == packs[:, :1]).all()


def test_critic_activations_match_torch_and_keep_the_state_dict_layout():
    d = Discriminator(DATA, (16, 8), pac=PAC)
    assert list(d.state_dict()) == ["net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias", "net.6.weight", "net.6.bias"]
    x = torch.randn(200, 16)
    torch.testing.assert_close(d.net[1](x), F.leaky_relu(x, 0.2), rtol=0, atol=0)
    drop = d.net[2]
    torch.manual_seed(0)
    kept = drop(torch.ones(500, 400))
    assert set(kept.unique().tolist()) == {0.0, 2.0} and abs((kept > 0).float().mean().item() - 0.5) < 0.01
    drop.eval()
    assert torch.equal(drop(x), x)


def test_gathered_condition_loss_equals_one_cross_entropy_per_span():
    gen = torch.Generator().manual_seed(2)
    spans = [Span("a", "category", "softmax", 0, 3), Span("b", "category", "softmax", 4, 2),
             Span("c", "category", "softmax", 6, 5)]
    raw = torch.randn(30, 11, generator=gen)
    span = torch.randint(0, 3, (30,), generator=gen)
    local = torch.tensor([int(torch.randint(0, spans[j].width, (1,), generator=gen)) for j in span])
    loop = sum(F.cross_entropy(raw[span == j, s.start:s.stop], local[span == j], reduction="sum")
               for j, s in enumerate(spans)) / 30
    torch.testing.assert_close(condition_loss(raw, spans, span, local), loop)
    assert condition_loss(raw, [], torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)) == 0


def test_activate_draws_one_relaxed_category_per_softmax_span():
    spans = [Span("x", "value", "continuous", 0, 1), Span("y", "category", "softmax", 1, 4),
             Span("m", "value", "bounded", 5, 1), Span("z", "missing", "softmax", 6, 2)]
    raw = torch.randn(300, 8)
    torch.manual_seed(3)
    out = activate(raw, spans)
    torch.manual_seed(3)
    assert torch.equal(out, activate(raw, spans))  # seeded: the same draw
    torch.testing.assert_close(out[:, 0], raw[:, 0])
    torch.testing.assert_close(out[:, 5], torch.tanh(raw[:, 5]))
    torch.testing.assert_close(out[:, 1:5].sum(1), torch.ones(300))
    # a Gumbel-softmax draw follows softmax(raw): category frequencies of the (nearly one-hot) draws
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]]).expand(20000, 4)
    draws = activate(torch.cat([torch.zeros(20000, 1), logits, torch.zeros(20000, 3)], 1), spans)[:, 1:5]
    torch.testing.assert_close(F.one_hot(draws.argmax(1), 4).float().mean(0), F.softmax(logits[0], 0), atol=0.015, rtol=0)
    with pytest.raises(ValueError, match="tile"):
        activate(raw, spans[1:])
