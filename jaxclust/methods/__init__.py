"""Methods by name. A method is one module of this package, registered by one line in METHODS, with

    method_config() -> ConfigDict    # its `method` section: `name` and every key it reads, with defaults;
                                     # a key named *_epochs counts epochs of train.epochs (a warm-up): the
                                     # config gate fits it into shorter runs (config._check_epoch_counts)
    validate(cfg) -> None            # ConfigError (jaxclust.config) for a method.* value that cannot work
    build(cfg, num_examples, steps_per_epoch) -> common.Method   # the pure functions the loop runs
    PUBLISHED: dict                  # paper numbers a report is read against (may be empty), keyed by
                                     # (data.name, model.backbone) or (data.name, model.backbone, image_size)

Nothing outside this package knows a method by name: the training loop, the tools and the report find
it here by `method.name` and use only the above and the `Method` record. CONTRIBUTING.md lists the
steps to add one.
"""
from __future__ import annotations

from types import ModuleType

import ml_collections

from jaxclust.config import ConfigError, base_config
from jaxclust.methods import byol, c2bin, hadis, moco, pcl, propos, secu, secu_self_label

METHODS: dict[str, ModuleType] = {
    "propos": propos,
    "byol": byol,
    "moco": moco,
    "pcl": pcl,
    "secu": secu,
    "secu_self_label": secu_self_label,
    "c2bin": c2bin,
    "hadis": hadis,
}


def get(name: str) -> ModuleType:
    """The module of method `name`; ConfigError naming the known ones otherwise."""
    if name not in METHODS:
        raise ConfigError(f"method.name must be one of {', '.join(map(repr, METHODS))}; got {name!r}.")
    return METHODS[name]


def default_config(name: str = "propos") -> ml_collections.ConfigDict:
    """`base_config()` with the `method` section of method `name`: where config files start."""
    c = base_config()
    c.method = get(name).method_config()
    return c


def build_method(cfg, num_examples: int, steps_per_epoch: int):
    return get(cfg.method.name).build(cfg, num_examples, steps_per_epoch)
