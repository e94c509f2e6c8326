"""Methods by name. Each is one file (a module) exposing

    build(cfg, num_examples, steps_per_epoch) -> jaxclust.methods.common.Method
    validate(cfg) -> None   # raises jaxclust.config.ConfigError for a bad method.* value

The training loop finds a method here by `method.name` and knows nothing else about it.
"""
from jaxclust.methods import propos
from jaxclust.methods import byol, moco, pcl  # BYOL, MoCo v2, PCL: ProPos' baselines (issue #5)
from jaxclust.methods import c2bin, hadis, secu  # issue #6

METHODS = {
    "propos": propos,
    "byol": byol,
    "moco": moco,
    "pcl": pcl,
    "secu": secu,
    "c2bin": c2bin,
    "hadis": hadis,
}


def build_method(cfg, num_examples: int, steps_per_epoch: int):
    return METHODS[cfg.method.name].build(cfg, num_examples, steps_per_epoch)
