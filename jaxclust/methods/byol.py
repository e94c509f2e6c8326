"""BYOL as ProPos' baseline (Grill et al., NeurIPS 2020; ProPos Tables 2 and 6).

BYOL is ProPos without its two additions: no prototype scattering loss (lambda_psl = 0) and no
positive-sampling noise (sigma = 0). The official ProPos BYOL baselines (`config/cifar10_r18_byol.yml`,
`config/cifar20_r18_byol.yml` of Hzzone/ProPos) are exactly the ProPos model with
`cluster_loss_weight: 0`, `latent_std: 0` and a cosine-increasing EMA (0.996 -> 1); so this file
builds `propos.build` with those two switched off and shares everything else (networks, predictor
learning rate x10, target BatchNorm, EMA timing, E-step). As in the official baseline the PSL is still
evaluated (weighted by 0) and logged as `psl_loss`, which makes a BYOL run's PSL comparable with
ProPos'; it has no effect on training.
"""
from __future__ import annotations

import ml_collections

from jaxclust.config import ConfigError, choose, in_range
from jaxclust.methods import propos
from jaxclust.methods.common import Method

PUBLISHED = {  # ProPos' BYOL rows (fractions); keys as in propos.PUBLISHED
    ("cifar10", "resnet34"): {"nmi": 0.817, "acc": 0.894, "ari": 0.790, "source": "ProPos Table 2"},
    ("cifar20", "resnet34"): {"nmi": 0.559, "acc": 0.569, "ari": 0.393, "source": "ProPos Table 2"},
    ("cifar10", "resnet18"): {"nmi": 0.794, "acc": 0.878, "ari": 0.766, "source": "ProPos Table 6 (mean of runs)"},
    ("cifar20", "resnet18"): {"nmi": 0.555, "acc": 0.539, "ari": 0.376, "source": "ProPos Table 6 (mean of runs)"},
}


def method_config() -> ml_collections.ConfigDict:
    """The `method` section of a BYOL config, with the official ProPos BYOL-baseline values."""
    m = ml_collections.ConfigDict()
    m.name = "byol"
    m.ema_momentum = 0.996  # official momentum_base (BYOL paper tau_base)
    m.ema_increase = True  # official cifar{10,20}_r18_byol.yml: momentum_increase: true (cosine to 1)
    m.forward = "v1"  # v1: two symmetric passes | v2: views concatenated (official forward_v2)
    return m


def validate_keys(cfg) -> None:
    """Checks the BYOL keys of `cfg.method` (also used by PCL's "BYOL + PCL")."""
    missing = [k for k in ("ema_momentum", "ema_increase", "forward") if k not in cfg.method]
    if missing:
        raise ConfigError(
            f"method.name={cfg.method.name!r} needs method.{', method.'.join(missing)}; build the config's "
            f"method section with jaxclust.methods.byol.method_config()."
        )
    choose(cfg, "method.forward", ("v1", "v2"))
    in_range(cfg, "method.ema_momentum", 0, 1)


def validate(cfg) -> None:
    validate_keys(cfg)
    for key in ("psl_weight", "sigma"):  # a ProPos-style method section may carry them, as zeros
        if key in cfg.method and cfg.method[key] != 0:
            raise ConfigError(
                f"method.{key} is {cfg.method[key]!r} but BYOL has no PSL and no PSA noise; "
                f"set it to 0, or use method.name=propos."
            )


def propos_view(cfg) -> ml_collections.ConfigDict:
    """An unlocked copy of `cfg` whose method section is ProPos' with PSL and PSA noise switched off."""
    view = ml_collections.ConfigDict(cfg.to_dict())
    method = propos.method_config().to_dict()  # ProPos defaults for the keys BYOL does not have
    method.update(cfg.method.to_dict())
    method.update(psl_weight=0.0, sigma=0.0)  # official BYOL baseline: cluster_loss_weight 0, latent_std 0
    view.method = ml_collections.ConfigDict(method)
    return view


def build(cfg, num_examples: int, steps_per_epoch: int, *, name: str = "byol", terms=()) -> Method:
    """propos.build on `propos_view(cfg)`; `terms` as there."""
    return propos.build(propos_view(cfg), num_examples, steps_per_epoch, name=name, terms=terms)
