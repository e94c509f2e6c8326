"""Linear evaluation of frozen features: a linear classifier trained on top of a fixed network.

Protocol (ProPos Sec. 5.3.2, Table 5, "following the same settings in [SimSiam]"): a linear classifier
on the frozen backbone features, 90 epochs, batch 4,096, initial learning rate 1.6, cosine decay,
SGD with momentum 0.9 and weight decay 0. Here the learning rate is written as SimSiam's rule,
`base_lr * batch / 256` with base_lr 0.1 (= 1.6 at batch 4,096), so it stays sensible when a small
data set makes the batch smaller. As the official `models/lincls/lincls.py`: the encoder is the
target (EMA) backbone in eval mode, its pooled output is not normalised, the classifier's weight is
drawn from N(0, 0.01) and its bias is 0, the loss is cross-entropy, top-1 (and top-5) accuracy is
reported on held-out images.

Differences from the official run, each a config value:
  * `augment`: the official run re-crops and flips the training images every epoch; the default
    here computes the features once (no augmentation), which is much cheaper and what most
    clustering papers' "linear probe" means. `augment=True` re-embeds crop+flip views every epoch.
  * the split: the official ImageNet run trains on train and tests on val. jaxclust holds one bank
    (CIFAR: train+test, as the clustering runs use); `train_examples=N` trains on its first N images
    and tests on the rest (CIFAR-10/100 whole-dataset order: 50,000), else a stratified random
    `test_fraction` is held out.
"""
from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.features = "backbone"  # backbone: pooled backbone output | embed: the features the method clusters
    c.network = "target"  # target (EMA) network, as the official lincls | online
    c.epochs = 90  # ProPos Sec. 5.3.2
    c.batch_size = 4096  # ProPos Sec. 5.3.2; capped at the number of training images
    c.base_lr = 0.1  # lr = base_lr * batch / 256 = 1.6 at batch 4096 (ProPos Sec. 5.3.2, SimSiam)
    c.momentum = 0.9  # ProPos Sec. 5.3.2
    c.weight_decay = 0.0  # ProPos Sec. 5.3.2
    c.schedule = "cosine"  # cosine (ProPos Sec. 5.3.2) | constant
    c.feature_norm = "none"  # none (official lincls) | l2
    c.augment = False  # True: random crop + flip of the training images every epoch (official lincls)
    c.train_examples = 0  # > 0: the first N images train, the rest test; 0: random stratified split
    c.test_fraction = 0.2  # held out per class when train_examples == 0
    c.seed = 0
    c.log_every_epochs = 10
    return c


def validate(cfg) -> None:
    """ValueError in one sentence for a linear-evaluation value that cannot work."""
    allowed = {"features": ("backbone", "embed"), "network": ("target", "online"),
               "schedule": ("cosine", "constant"), "feature_norm": ("none", "l2")}
    for key, values in allowed.items():
        if cfg[key] not in values:
            raise ValueError(f"linear.{key} must be one of {', '.join(map(repr, values))}; got {cfg[key]!r}.")
    for key in ("epochs", "batch_size", "log_every_epochs"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"linear.{key} must be a positive integer, got {cfg[key]!r}.")
    if cfg.train_examples < 0:
        raise ValueError(f"linear.train_examples must be >= 0, got {cfg.train_examples}.")


def _normalize(x, how: str):
    if how == "l2":
        return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return x


def _topk(logits, labels, k: int) -> jax.Array:
    k = min(k, logits.shape[-1])
    top = jax.lax.top_k(logits, k)[1]
    return jnp.mean(jnp.any(top == labels[:, None], axis=-1))


def train_linear(
    train_features: np.ndarray | Callable[[int], jax.Array],
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    cfg,
    log: Callable[[str], None] = print,
) -> dict:
    """Trains the linear classifier; returns its test/train accuracy and the settings used.

    `train_features` is an (n, D) array, or a function epoch -> (n, D) features of that epoch's
    augmented training images (`cfg.augment`); rows follow `train_labels`.
    """
    validate(cfg)
    t0 = time.time()
    features_of = train_features if callable(train_features) else (lambda epoch, x=jnp.asarray(train_features): x)
    y_train, y_test = jnp.asarray(train_labels, jnp.int32), jnp.asarray(test_labels, jnp.int32)
    x_test = _normalize(jnp.asarray(test_features, jnp.float32), cfg.feature_norm)
    n = len(train_labels)
    batch = min(cfg.batch_size, n)
    steps_per_epoch = n // batch
    total = steps_per_epoch * cfg.epochs
    lr = cfg.base_lr * batch / 256
    schedule = optax.cosine_decay_schedule(lr, total) if cfg.schedule == "cosine" else optax.constant_schedule(lr)
    # torch SGD: coupled weight decay (grad + wd * w), then momentum
    tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.sgd(schedule, momentum=cfg.momentum))

    root = jax.random.key(cfg.seed)
    x0 = features_of(0)
    dim = x0.shape[-1]
    # official lincls: fc.weight ~ N(0, 0.01), bias 0
    params = {"w": 0.01 * jax.random.normal(jax.random.fold_in(root, 0), (dim, num_classes)),
              "b": jnp.zeros((num_classes,))}
    opt_state = tx.init(params)

    def loss_fn(p, x, y):
        logits = x @ p["w"] + p["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def epoch_fn(params, opt_state, x, key):
        x = _normalize(x, cfg.feature_norm)
        order = jax.random.permutation(key, n)[: steps_per_epoch * batch].reshape(steps_per_epoch, batch)

        def step(carry, idx):
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, x[idx], y_train[idx])
            updates, s = tx.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), order)
        return params, opt_state, losses.mean()

    @jax.jit
    def accuracy(params, x, y):
        logits = x @ params["w"] + params["b"]
        return _topk(logits, y, 1), _topk(logits, y, 5)

    history = []
    for epoch in range(cfg.epochs):
        x = x0 if epoch == 0 else features_of(epoch)
        params, opt_state, loss = epoch_fn(params, opt_state, x, jax.random.fold_in(root, epoch + 1))
        if (epoch + 1) % cfg.log_every_epochs == 0 or epoch + 1 == cfg.epochs:
            top1 = float(accuracy(params, x_test, y_test)[0])
            history.append({"epoch": epoch + 1, "loss": round(float(loss), 5), "test_top1": round(top1, 5)})
            log(f"linear evaluation: epoch {epoch + 1}/{cfg.epochs} | loss {float(loss):.4f} | test top-1 {top1:.4f}")
    test_top1, test_top5 = accuracy(params, x_test, y_test)
    train_top1, _ = accuracy(params, _normalize(x, cfg.feature_norm), y_train)  # on the last epoch's views
    return {
        "top1": round(float(test_top1), 5),
        "top5": round(float(test_top5), 5),
        "train_top1": round(float(train_top1), 5),
        "num_train": int(n),
        "num_test": int(len(test_labels)),
        "feature_dim": int(dim),
        "batch_size": int(batch),
        "lr": lr,
        "history": history,
        "seconds": round(time.time() - t0, 2),
        "config": cfg.to_dict(),
    }
