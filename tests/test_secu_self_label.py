"""SeCu's self-labeling stage (method secu_self_label): its loss against numpy, its config checks, and
the stage starting from a finished SeCu run."""
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust import losses
from jaxclust.checkpoint import Checkpointer
from jaxclust.config import ConfigError, load_config_file
from jaxclust.methods import default_config, secu, secu_self_label
from jaxclust.trainer import check_config, train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
DIGITS, BATCH = 1797, 256


def _np_self_label(weak, strong, stored, threshold, warmup):
    """numpy float64: CE of softmax(strong) against the weak argmax where max p > threshold; in the
    warm-up every row, against its stored label (the weak argmax where there is none)."""
    p = np.exp(weak - weak.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    predicted = p.argmax(1)
    if warmup:
        target, keep = np.where(stored >= 0, stored, predicted), np.ones(len(p))
    else:
        target, keep = predicted, (p.max(1) > threshold).astype(np.float64)
    log_q = strong - strong.max(1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(1, keepdims=True))
    ce = -log_q[np.arange(len(p)), target]
    loss = np.sum(keep * ce) / max(np.sum(keep), 1.0)
    grad = keep[:, None] * (np.exp(log_q) - np.eye(p.shape[1])[target]) / max(np.sum(keep), 1.0)
    return loss, np.mean(keep), grad


def test_self_label_loss_matches_numpy():
    rng = np.random.default_rng(0)
    weak, strong = rng.normal(size=(40, 6)) * 3, rng.normal(size=(40, 6)) * 2
    stored = rng.integers(-1, 6, size=40)  # -1: an instance without a stored label
    for warmup in (False, True):
        for threshold in (0.0, 0.5, 0.9):
            args = (jnp.asarray(stored), threshold, jnp.asarray(warmup))
            loss, kept = losses.self_label_loss(jnp.asarray(weak, jnp.float32), jnp.asarray(strong, jnp.float32), *args)
            want_loss, want_kept, want_grad = _np_self_label(weak, strong, stored, threshold, warmup)
            assert float(loss) == pytest.approx(want_loss, rel=1e-5) and float(kept) == pytest.approx(want_kept)
            assert warmup or threshold == 0.0 or 0.0 < want_kept < 1.0  # the threshold bites
            grads = jax.grad(lambda w, s: losses.self_label_loss(w, s, *args)[0], argnums=(0, 1))(
                jnp.asarray(weak, jnp.float32), jnp.asarray(strong, jnp.float32))
            assert not np.any(np.asarray(grads[0]))  # the weak view is the target only
            np.testing.assert_allclose(grads[1], want_grad, atol=1e-6)
    # no confident row: loss 0, nothing counted
    loss, kept = losses.self_label_loss(jnp.zeros((4, 5)), jnp.ones((4, 5)), jnp.zeros(4, jnp.int32), 0.9, False)
    assert float(loss) == 0.0 and float(kept) == 0.0


def tiny_secu_config():
    c = load_config_file(ROOT / "configs" / "secu_digits.py")
    c.model.convnet_widths = (4, 8)
    c.model.projector_hidden, c.model.projector_dim = 16, 8
    c.method.num_heads = 2  # heads of 10 and 20 centres
    c.optim.frozen_epochs, c.optim.warmup_epochs = 0, 0
    c.train.epochs, c.train.batch_size, c.train.embed_batch_size = 1, BATCH, 512
    c.train.checkpoint_every_epochs = c.train.log_every_epochs = c.cluster.every = 1
    return c


def self_label_config(workdir, **method):
    c = tiny_secu_config()
    c.method = default_config("secu_self_label").method
    c.method.init_workdir = str(workdir)
    c.method.warmup_epochs = 1
    c.method.update(method)
    return c


@pytest.fixture(scope="module")
def secu_run(tmp_path_factory):
    """A finished 1-epoch SeCu run on digits and its final state."""
    workdir = tmp_path_factory.mktemp("secu")
    cfg = tiny_secu_config()
    train_and_evaluate(cfg, workdir)
    like = jax.eval_shape(secu.build(cfg, DIGITS, DIGITS // BATCH).init, jax.random.key(0), jnp.zeros((2, 8, 8, 1)))
    checkpointer = Checkpointer(workdir)
    final, _ = checkpointer.restore(checkpointer.latest_epoch(), like)
    checkpointer.close()
    return workdir, final


def test_stage_starts_from_the_secu_run(secu_run):
    workdir, final = secu_run
    cfg = self_label_config(workdir)
    check_config(cfg)
    method = secu_self_label.build(cfg, DIGITS, DIGITS // BATCH)
    state = jax.jit(method.init)(jax.random.key(1), jnp.zeros((2, 8, 8, 1)))
    for got, want in ((state.params["net"], final.params["net"]), (state.batch_stats, final.batch_stats)):
        assert jax.tree.structure(got) == jax.tree.structure(want)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_array_equal(a, b)
    assert list(state.params["centers"]) == ["head00"]  # head K only, as stored
    np.testing.assert_array_equal(state.params["centers"]["head00"], final.params["centers"]["head00"])
    np.testing.assert_array_equal(state.extra["secu_labels"], final.extra["labels"][0])
    assert int(state.step) == 0 and all(not np.any(np.asarray(x)) for x in jax.tree.leaves(state.opt_state))
    # its E-step labels are the SeCu run's head-K predictions, until it trains
    images = jax.random.normal(jax.random.key(2), (64, 8, 8, 1))
    secu_method = secu.build(tiny_secu_config(), DIGITS, DIGITS // BATCH)
    ours = method.cluster(state, method.embed(state, images), None)[1]
    w = losses.l2_normalize(final.params["centers"]["head00"])
    np.testing.assert_array_equal(ours, np.argmax(np.asarray(secu_method.embed(final, images) @ w.T), axis=1))
    # a warm-up step trains every row on its stored label, and moves the encoder and the centres
    views = jax.random.normal(jax.random.key(3), (2, 16, 8, 8, 1))
    new, metrics = jax.jit(method.train_step)(state, views[0], views[1], jnp.arange(16), jax.random.key(4))
    assert np.isfinite(float(metrics["loss"])) and float(metrics["confident"]) == 1.0
    for part in ("net", "centers"):
        assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(new.params[part]), jax.tree.leaves(state.params[part])))
    # a head of another size of the same run: K = 20 takes its head01 and that head's labels
    cfg20 = self_label_config(workdir)
    cfg20.cluster.num_clusters = 20
    state20 = secu_self_label.build(cfg20, DIGITS, DIGITS // BATCH).init(jax.random.key(1), jnp.zeros((2, 8, 8, 1)))
    np.testing.assert_array_equal(state20.params["centers"]["head00"], final.params["centers"]["head01"])
    np.testing.assert_array_equal(state20.extra["secu_labels"], final.extra["labels"][1])


def test_errors_name_the_key(secu_run, tmp_path):
    workdir, _ = secu_run
    for value, match in (("", r"method\.init_workdir must be"), (str(tmp_path), r"method\.init_workdir .* has no checkpoint")):
        with pytest.raises(ConfigError, match=match):
            check_config(self_label_config(value))
    for key, value in (("threshold", 1.0), ("warmup_epochs", 5)):
        with pytest.raises(ConfigError, match=f"method.{key}"):
            check_config(self_label_config(workdir, **{key: value}))
    cfg = self_label_config(workdir)
    cfg.optim.predictor_lr_mult = 10.0
    with pytest.raises(ConfigError, match="predictor_lr_mult"):
        check_config(cfg)
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    (copy / "config.json").write_text(json.dumps({"method": {"name": "propos"}}))
    with pytest.raises(ConfigError, match="not 'secu'"):
        check_config(self_label_config(copy))
    (copy / "config.json").unlink()
    with pytest.raises(ConfigError, match="config.json"):
        check_config(self_label_config(copy))
    wider = self_label_config(workdir)
    wider.model.convnet_widths = (4, 16)
    with pytest.raises(ConfigError, match=r"method\.init_workdir .* another architecture"):
        secu_self_label.build(wider, DIGITS, 7)
    no_head = self_label_config(workdir)
    no_head.cluster.num_clusters = 30
    with pytest.raises(ConfigError, match="no head of 30 centres"):
        secu_self_label.build(no_head, DIGITS, 7)
    with pytest.raises(ConfigError, match="labels of 1797 images"):
        secu_self_label.build(self_label_config(workdir), 500, 2)


def test_configs():
    c = load_config_file(ROOT / "configs" / "secu_cifar10_self_label.py")
    assert (c.method.name, c.method.threshold, c.method.warmup_epochs, c.method.init_workdir) == ("secu_self_label", 0.9, 10, "")
    assert (c.optim.frozen_epochs, c.optim.warmup_epochs, c.train.epochs, c.train.batch_size) == (0, 0, 100, 1024)
    assert c.optim.schedule == "warmup_cosine_to_end" and c.optim.lr_batch_scaling == "none"
    d = load_config_file(ROOT / "configs" / "secu_digits_self_label.py")
    assert (d.method.name, d.method.warmup_epochs, d.train.epochs, d.optim.frozen_epochs) == ("secu_self_label", 5, 30, 0)
