"""HaDis: diffused sampling and hardness-aware self-distillation (Zhang & Huang, arXiv:2401.14038).

Reference: shared/reference/seed_hadis.md. The official code (Regan-Zhang/HaDis) is the official
ProPos code with one loss added, and so is this file: ProPos (`propos.build`) with HaDis' names

    DSA = ProPos' PSA (noise epsilon = method.sigma on the un-normalised projector output), Eq. 2-3
    PCL = ProPos' PSL (in-batch prototypes of the k-means pseudo-labels), Eq. 9-11
    HSD = hardness-aware self-distillation, Eq. 4-8, `losses.hardness_aware_self_distillation_loss`

    loss = L_DSA + eta L_HSD + lambda 1[epoch > warm-up] L_PCL        (Eq. 13; official byol.py)

each term the mean of the two view orders. HSD takes the teacher's l2-normalised projection of one
view and the student's prediction (with the diffusion noise, the same draw as DSA) of the other; it is
on from the first step, warm-up included (official). The E-step is ProPos' spherical k-means on the
teacher's l2-normalised projector features.
"""
from __future__ import annotations

import ml_collections

from jaxclust import losses
from jaxclust.config import ConfigError, choose, in_range, nonnegative
from jaxclust.methods import propos
from jaxclust.methods.common import LossTerm, Method

PUBLISHED = {}  # HaDis reports its own tables; none is keyed here yet


def method_config() -> ml_collections.ConfigDict:
    """The `method` section of a HaDis config: ProPos' keys with the official HaDis CIFAR-10 values, plus HSD's."""
    m = propos.method_config()  # ProPos' keys (propos.build reads them)
    m.name = "hadis"
    m.psl_weight = 0.1  # lambda, official config/cifar10_r18_propos.yml (CIFAR-20, ImageNet-10: 0.05)
    m.temperature = 0.5  # tau_p of the PCL, official `temperature`
    m.sigma = 0.001  # epsilon of DSA, official latent_std (Table IV)
    m.forward = "v1"  # official v2: false; the official forward_v2 has no HSD, so HaDis needs v1
    m.ema_momentum = 0.996  # alpha, Eq. 12
    m.ema_increase = False  # CIFAR-20: true (official momentum_increase)
    m.hsd_weight = 1.0  # eta of Alg. 1; Eq. 13 and the official code use 1
    m.hsd_temperature = 0.5  # tau_h, hard-coded in the official HSD(tau=0.5)
    # Ambiguities of seed_hadis.md §6 that change results, with the official code as the default:
    m.hsd_partition = "code"  # A1: code: D^tt_ij > D^ts_ii (anchor's own gap) | paper: Eq. 4, D^tt_ij >= D^ts_ij
    m.psl_negatives = "online"  # A2: online: mu_k.mu_j (official code) | target: mu_k.mu'_j (paper Eq. 9)
    return m


def validate(cfg) -> None:
    propos.validate(cfg)
    m = cfg.method
    choose(cfg, "method.hsd_partition", ("code", "paper"))
    choose(cfg, "method.psl_negatives", ("online", "target"))
    if m.forward != "v1":
        raise ConfigError(
            "HaDis needs method.forward=v1: HSD compares each view's B x B distances, and the official "
            "forward_v2 has no HSD term (seed_hadis.md §1.5)."
        )
    nonnegative(cfg, "method.hsd_weight")
    in_range(cfg, "method.hsd_temperature", 0, open_low=True)


def build(cfg, num_examples: int, steps_per_epoch: int) -> Method:
    m = cfg.method

    def hsd(pair):  # official: on from the first iteration, warm-up included
        loss = losses.hardness_aware_self_distillation_loss(pair.target, pair.prediction, m.hsd_temperature,
                                                            m.hsd_partition)
        return m.hsd_weight * loss, {"hsd_loss": loss}

    return propos.build(cfg, num_examples, steps_per_epoch, name="hadis", terms=(LossTerm(hsd),))
