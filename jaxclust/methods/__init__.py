"""Methods by name. Each is one file (a module) exposing

    build(cfg, num_examples, steps_per_epoch) -> jaxclust.methods.common.Method
    validate(cfg) -> None   # raises jaxclust.config.ConfigError for a bad method.* value

The training loop finds a method here by `method.name` and knows nothing else about it.
"""
from jaxclust.methods import propos

METHODS = {"propos": propos}


def build_method(cfg, num_examples: int, steps_per_epoch: int):
    return METHODS[cfg.method.name].build(cfg, num_examples, steps_per_epoch)
