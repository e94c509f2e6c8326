"""Methods by name. Each is one file exposing `build(cfg, num_examples, steps_per_epoch) -> Method`."""
from jaxclust.methods import propos

METHODS = {"propos": propos.build}


def build_method(cfg, num_examples: int, steps_per_epoch: int):
    if cfg.method.name not in METHODS:
        raise ValueError(
            f"unknown method.name {cfg.method.name!r}; choose one of: {', '.join(sorted(METHODS))}."
        )
    return METHODS[cfg.method.name](cfg, num_examples, steps_per_epoch)
