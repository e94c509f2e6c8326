"""SeCu's self-labeling stage (Qian, ICCV 2023, §4.2, App. C.1; SCAN's self-labeling): fine-tunes a
finished SeCu run's head-K classifier. Reference: shared/reference/seed_secu.md §7.4, §12.16.

The network is the SeCu run's encoder f and its head of K = cluster.num_clusters centres; the class
logits of an image are x.w_j / lambda_w (x and w_j l2-normalised, lambda_w the SeCu run's
`method.center_temperature`). The loss is `losses.self_label_loss`: cross-entropy of view 2's (the
strong view's) logits against view 1's (the weak view's) argmax, on the rows whose confidence exceeds
`method.threshold`; during the first `method.warmup_epochs` every row trains on its stored SeCu
assignment instead. Encoder, MLP head and the head-K centres are all trained by the `optim` section's
optimiser (configs/secu_cifar10_self_label.py: SeCu's warm-up then cosine, no initialisation epoch),
the centres at the SeCu run's constant `method.centers_lr`. The E-step's labels are the head's argmax.

Not in the official code; the paper gives SGD, momentum 0.9, threshold 0.9, 10 epochs of warm-up on the
fixed SeCu assignments, 100 epochs (small data sets), batch 1024. The views are those of `augment`: for
SCAN's weak/strong pair set view 1 to the plain image and view 2 to SCAN's strong transform,
RandAugment + Cutout with `augment.asymmetric`, `augment.view2.randaugment_ops` (SCAN: 4) and
`augment.view2.cutout_length` (CIFAR: 16, STL-10: 32), as configs/secu_cifar10_self_label.py does.

What is read from the SeCu run in `method.init_workdir` (`secu.read_run`): from its newest checkpoint
the encoder (its architecture must be this config's `model.*`), the centres of its head of K centres
and that head's stored labels (the data must be the same); from its WORKDIR/config.json (written when
a run starts) `method.center_temperature` and `method.centers_lr`.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxclust import checkpoint, losses, optim
from jaxclust.config import ConfigError, in_range
from jaxclust.methods import secu
from jaxclust.methods.common import Method, apply_train
from jaxclust.state import initial_state

PUBLISHED = {  # SeCu Table 5 "with self-labeling" (SeCu-Size + self-labeling); the paper scores the test split
    ("cifar10", "resnet18"): {"nmi": 0.861, "acc": 0.930, "ari": 0.857, "source": "SeCu Table 5 (with self-labeling)"},
    ("cifar20", "resnet18"): {"nmi": 0.551, "acc": 0.552, "ari": 0.397, "source": "SeCu Table 5 (with self-labeling)"},
}
RUN_CONFIG = "config.json"  # what jaxclust.trainer writes into every workdir when a run starts
KEY = "method.init_workdir"


def method_config() -> ml_collections.ConfigDict:
    """The `method` section of the self-labeling stage: the paper's values (seed_secu.md §7.4)."""
    m = ml_collections.ConfigDict()
    m.name = "secu_self_label"
    m.init_workdir = ""  # workdir of the finished SeCu run whose newest checkpoint is fine-tuned (required)
    m.threshold = 0.9  # confidence for a pseudo-label (paper; SCAN itself uses 0.99)
    m.warmup_epochs = 10  # epochs trained on all instances with the fixed SeCu labels (paper)
    return m


def validate(cfg) -> None:
    m = cfg.method
    in_range(cfg, "method.threshold", 0, 1, open_high=True)
    if not isinstance(m.warmup_epochs, int) or not 0 <= m.warmup_epochs <= cfg.train.epochs:
        raise ConfigError(f"method.warmup_epochs must be an integer between 0 and train.epochs ({cfg.train.epochs}), "
                          f"got {m.warmup_epochs!r}.")
    optim.require_no_predictor(cfg)
    secu_method(cfg)  # fails here, before the data is loaded; the checkpoint is read by build


def secu_method(cfg) -> ml_collections.ConfigDict:
    """The `method` section of the SeCu run in method.init_workdir, from its config.json."""
    workdir = cfg.method.init_workdir
    if not isinstance(workdir, str) or not workdir:
        raise ConfigError(f"{KEY} must be the workdir of a finished SeCu run (the stage fine-tunes its newest "
                          f"checkpoint), got {workdir!r}; pass --config.{KEY}=DIR.")
    checkpoint.checkpoint_directory(workdir, KEY)
    path = Path(workdir) / RUN_CONFIG
    if not path.is_file():
        raise ConfigError(f"{KEY} {workdir!r} has no {RUN_CONFIG} (a run writes it when it starts); pass the "
                          "workdir of a SeCu run trained with this version of jaxclust.")
    method = json.loads(path.read_text()).get("method", {})
    if method.get("name") != "secu":
        raise ConfigError(f"{KEY} {workdir!r} holds a run of method {method.get('name')!r}, not 'secu'; pass the "
                          "workdir of a SeCu run.")
    return ml_collections.ConfigDict(method)


def build(cfg, num_examples: int, steps_per_epoch: int) -> Method:
    m = cfg.method
    run = secu_method(cfg)
    net = secu.Encoder(cfg.model)
    name = secu.head_names(1)[0]
    # read here, outside jit: the jitted init closes over the restored arrays
    source = secu.read_run(cfg, net, (cfg.cluster.num_clusters,), KEY, m.init_workdir)
    stored = source["labels"][0]
    if stored is None or stored.shape != (num_examples,):
        raise ConfigError(f"{KEY} {m.init_workdir!r} holds labels of "
                          f"{'no' if stored is None else stored.shape[0]} images, this config's data has "
                          f"{num_examples}; set data.* as in that run.")
    tx, lr_fn = optim.make_optimizer(cfg.optim, steps_per_epoch, cfg.train.epochs, cfg.train.batch_size,
                                     constant_lr={"centers": run.centers_lr})

    def init(key, sample):
        del key, sample
        params = {"net": source["net"], "centers": {name: source["centers"][0]}}
        return initial_state(tx, params, source["batch_stats"], extra={"secu_labels": jnp.asarray(stored, jnp.int32)})

    def logits(params, x):
        w = losses.l2_normalize(params["centers"][name])
        return losses.l2_normalize(x) @ w.T / run.center_temperature

    def train_step(state, view1, view2, indices, key):
        del key
        warmup = state.step < m.warmup_epochs * steps_per_epoch

        def loss_fn(params):
            weak, stats = apply_train(net, params["net"], state.batch_stats, view1)
            strong, stats = apply_train(net, params["net"], stats, view2)
            loss, confident = losses.self_label_loss(logits(params, weak), logits(params, strong),
                                                     state.extra["secu_labels"][indices], m.threshold, warmup)
            return loss, (stats, {"loss": loss, "confident": confident})

        (_, (stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=stats, opt_state=opt_state)
        metrics.update(lr=lr_fn(state.step - 1))
        return state, metrics

    def embed(state, images):
        z = net.apply({"params": state.params["net"], "batch_stats": state.batch_stats}, images, train=False)
        return losses.l2_normalize(z)

    def assign(state, features):
        return secu.most_similar(features, losses.l2_normalize(state.params["centers"][name]))

    def cluster(state, features, key):
        del key
        return state, np.asarray(assign(state, features)[0]), {}

    return Method("secu_self_label", init, train_step, embed, cluster, assign=assign)
