"""One adversarial training step of the tabular GAN (the non-private one; dp_training.py has the DP-SGD step):
critic updates, then a generator update. `TabularGAN.run_epoch` calls it for every step, in-process and on every
Ray Train worker; `model` is the TabularGAN (its networks, sampler, encoder and config)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganstream.trainers.tabular.conditioning import MODE_ROLES
from ganstream.trainers.tabular.losses import discriminator_loss, generator_loss, gradient_penalty, interpolates
from ganstream.trainers.tabular.networks import activate, condition_loss, frequency_match_loss


def adversarial_step(model, X: torch.Tensor, rng: np.random.Generator, opt_g, opt_d, aux=None) -> dict[str, float]:
    """One adversarial step on a batch of X: `discriminator_steps` critic updates, then one generator
    update. The last critic update and the generator update share one generator forward pass (the
    critic sees it detached), which saves a quarter of the step's compute. The critic takes the batch's
    condition rows once for real rows, fakes and interpolates (networks.Discriminator's shared-condition
    form: ~12% less CPU per Adult step than one packed forward per group, benchmarks/RESULTS.md)."""
    cfg, G, D, sampler, spans = model.config, model.generator, model.discriminator, model.sampler, model.encoder.spans
    B = cfg.batch_size
    critic_params = list(D.parameters())
    for i in range(cfg.discriminator_steps):
        cond, span, g, rows = sampler.sample_train(B, rng)
        c = torch.from_numpy(cond)
        real = X[torch.from_numpy(rows)]
        last = i == cfg.discriminator_steps - 1
        with torch.set_grad_enabled(last):
            raw = G(torch.randn(B, cfg.noise_dim), c)
            fake = activate(raw, spans)
        pairs = torch.cat([real, fake.detach()])
        if cfg.loss == "wgan-gp" and (_updates_done(opt_d) + 1) % cfg.gp_every == 0:
            x_hat = interpolates(real, fake.detach(), cfg.pac).requires_grad_(True)
            c_hat = c.detach().requires_grad_(True)  # the penalty's norm includes the condition columns
            scores, scores_hat = D(pairs, x_hat, cond=c_hat)
            penalty = gradient_penalty(scores_hat, (x_hat, c_hat), cfg.pac, cfg.gp_weight * cfg.gp_every)
        else:
            (scores,), penalty = D(pairs, cond=c), None
        real_scores, fake_scores = scores.chunk(2)
        loss_d = discriminator_loss(cfg.loss, real_scores, fake_scores, cfg.dual_alpha, cfg.dual_beta)
        if penalty is not None:
            loss_d = loss_d + penalty
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward(inputs=critic_params)  # not into c_hat: its gradient only serves the penalty's norm
        opt_d.step()
    out = {"d_loss": loss_d.item()}
    if aux:
        clf, opt_c, tspan, tmask = aux
        loss_clf = F.cross_entropy(clf(real * tmask), real[:, tspan.start:tspan.stop].argmax(1))
        opt_c.zero_grad(set_to_none=True)
        loss_clf.backward()
        opt_c.step()
    span_t = torch.from_numpy(span)
    loss_c = condition_loss(raw, sampler.spans, span_t, torch.from_numpy(g) - torch.from_numpy(sampler.offsets)[span_t])
    frozen = critic_params + ([p for p in aux[0].parameters()] if aux else [])
    for p in frozen:  # the generator's backward needs gradients w.r.t. fakes, not w.r.t. D's weights
        p.requires_grad_(False)
    loss_g = generator_loss(cfg.loss, D(fake, cond=c)[0], cfg.dual_beta) + loss_c
    matched = [s for s in spans if s.kind == "softmax" and (cfg.frequency_spans == "all" or s.role in MODE_ROLES)]
    if cfg.frequency_weight and matched:  # quantile encoding, frequency_spans="mode": nothing to match
        groups = torch.from_numpy(g) if len(g) else torch.zeros(B, dtype=torch.int64)  # no conditions: one group
        loss_f = frequency_match_loss(raw, real, matched, groups, max(sampler.dim, 1))
        loss_g = loss_g + cfg.frequency_weight * loss_f
        out["freq_loss"] = loss_f.item()
    if aux:
        clf, _, tspan, tmask = aux
        loss_t = F.cross_entropy(clf(fake * tmask), fake[:, tspan.start:tspan.stop].argmax(1).detach())
        loss_g = loss_g + cfg.target_weight * loss_t
        out["target_loss"] = loss_t.item()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    if model.average is not None:
        with torch.no_grad():
            torch._foreach_lerp_(list(model.average.parameters()), list(G.parameters()), 1.0 - cfg.generator_average)
            for kept, live in zip(model.average.buffers(), G.buffers()):  # batch-norm statistics: the live ones
                kept.copy_(live)
    for p in frozen:
        p.requires_grad_(True)
    out.update(g_loss=loss_g.item(), cond_loss=loss_c.item())
    return out


def _updates_done(opt: torch.optim.Optimizer) -> int:
    """Updates an optimiser has made, from its own state: it travels with checkpoints, so a resumed fit keeps
    the lazy penalty's schedule (an attribute on the model would restart at 0)."""
    state = opt.state.get(opt.param_groups[0]["params"][0])
    return int(state["step"]) if state else 0
