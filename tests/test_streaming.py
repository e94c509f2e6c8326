"""Streaming host pipeline: per-host shards, epoch shuffles, example ids, and the same on-device
augmentation as the in-memory bank."""
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxclust.config import base_config
from jaxclust.methods import default_config
from jaxclust.data import sources
from jaxclust.data.augment import view_configs
from jaxclust.data.sources import DataError
from jaxclust.trainer import two_views

tfds = pytest.importorskip("tensorflow_datasets")
streaming = pytest.importorskip("jaxclust.data.streaming")


def write_folder(root, per_class, pixels):
    """3 class sub-folders of `per_class` 12x12 RGB PNGs each, `pixels(class)` making one image."""
    for c in range(3):
        for i in range(per_class):
            path = Path(root) / f"class{c}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels(c)).save(path)
    return str(root)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    rng = np.random.RandomState(0)
    return write_folder(tmp_path_factory.mktemp("stream"), 7, lambda c: rng.randint(0, 256, (12, 12, 3)).astype(np.uint8))


def folder_cfg(path):
    c = base_config().data
    c.source, c.name, c.path, c.image_size = "folder", "toy", path, 12
    return c


def test_hosts_read_disjoint_shards_covering_everything(folder):
    hosts = [streaming.StreamingSource(folder_cfg(folder), h, 2) for h in range(2)]
    assert all(h.num_examples == 21 for h in hosts)
    seen = [np.concatenate([ids for ids, _ in h.eval_batches(4)]) for h in hosts]
    assert not set(seen[0]) & set(seen[1])
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(21))
    np.testing.assert_array_equal(seen[0], np.sort(seen[0]))  # eval order is the stored order
    for h in hosts:  # every host yields the same number of batches: N // global batch
        batches = list(h.train_batches(epoch=0, batch_size=6))
        assert len(batches) == 21 // 6 and all(im.shape == (3, 12, 12, 3) for _, im in batches)
    with pytest.raises(DataError, match="divisible by the number of hosts"):
        next(hosts[0].train_batches(0, 5))


def test_epochs_reshuffle_and_repeat_exactly(folder):
    src = streaming.StreamingSource(folder_cfg(folder), 0, 1)
    e0 = np.concatenate([ids for ids, _ in src.train_batches(0, 7, seed=1)])
    e0_again = np.concatenate([ids for ids, _ in src.train_batches(0, 7, seed=1)])
    e1 = np.concatenate([ids for ids, _ in src.train_batches(1, 7, seed=1)])
    np.testing.assert_array_equal(e0, e0_again)
    assert sorted(e0) == list(range(21)) and not np.array_equal(e0, e1)


def test_streamed_batches_feed_the_same_augmentation_as_the_bank(folder):
    bank = sources.load_source(folder_cfg(folder))
    src = streaming.StreamingSource(folder_cfg(folder), 0, 1)
    np.testing.assert_array_equal(src.labels, bank.labels)
    ids, images = next(iter(src.train_batches(0, 4)))
    np.testing.assert_array_equal(images, bank.images[ids])  # images at their stored size: no resize
    cfg = base_config()
    views = view_configs(cfg.augment)
    key = jax.random.key(0)
    streamed = two_views(key, images, ids, views, 8)
    gathered = two_views(key, bank.images[ids], ids, views, 8)
    for a, b in zip(streamed, gathered):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_imagenet_subset_stream_from_mock_tfds():
    c = base_config().data
    c.source, c.name, c.path, c.image_size, c.streaming = "tfds", "imagenet50", "/nonexistent", 16, True
    with tfds.testing.mock_data(num_examples=300):
        src = streaming.StreamingSource(c, 0, 1)
        bank = sources.load_source(c)
        assert src.num_examples == bank.num_examples and src.class_names == bank.class_names
        np.testing.assert_array_equal(src.labels, bank.labels)
        ids, images = [np.concatenate(x) for x in zip(*src.eval_batches(5))]
    np.testing.assert_array_equal(ids, np.arange(bank.num_examples))
    # tf.image antialiased bicubic on the host vs PIL bicubic in the bank: a few grey levels apart
    diff = np.abs(images.astype(int) - bank.images.astype(int))
    assert images.shape == bank.images.shape and np.mean(diff) < 6


# -- the training loop on a streamed data set ------------------------------------------------------

@pytest.fixture(scope="module")
def stream_folder(tmp_path_factory):
    """48 images in 3 classes of distinct mean brightness, 12x12: 6 steps of 8 per epoch."""
    rng = np.random.RandomState(1)
    return write_folder(tmp_path_factory.mktemp("stream_train"), 16,
                        lambda c: np.clip(rng.normal(60 + 70 * c, 30, (12, 12, 3)), 0, 255).astype(np.uint8))


def stream_config(path, streaming=True):
    c = default_config("propos")
    c.data.source, c.data.name, c.data.path, c.data.image_size, c.data.streaming = "folder", "toy", path, 12, streaming
    c.model.backbone, c.model.convnet_widths = "convnet", (8, 16)
    c.model.projector_hidden, c.model.projector_dim, c.model.predictor_hidden = 32, 16, 32
    c.train.epochs, c.train.batch_size, c.train.embed_batch_size = 2, 8, 16
    c.optim.warmup_epochs = 1
    c.cluster.num_clusters, c.kmeans.n_init, c.kmeans.max_iter = 3, 2, 20
    return c


def test_streamed_e_step_features_equal_the_banks(stream_folder, tmp_path):
    from jaxclust.trainer import Run

    streamed, banked = Run(stream_config(stream_folder), tmp_path), Run(stream_config(stream_folder, False), tmp_path)
    state = banked.init_state()
    np.testing.assert_allclose(np.asarray(streamed.embed_all(state)), np.asarray(banked.embed_all(state)), atol=1e-6)


class Preempted(Exception):
    pass


def test_streamed_run_resumed_mid_epoch_equals_uninterrupted(stream_folder, tmp_path, monkeypatch, capsys):
    import json

    from jaxclust import trainer

    cfg = stream_config(stream_folder)
    cfg.train.checkpoint_every_steps = 2
    straight = trainer.train_and_evaluate(cfg, tmp_path / "straight")
    assert np.isfinite(straight["loss"]) and "nmi" in straight

    build = trainer.Run.__init__

    def preempted_at_step_9(self, *args, **kwargs):  # epoch 2, step 3: after the checkpoint of step 8
        build(self, *args, **kwargs)
        step, calls = self.step, [0]

        def counting(*a):
            calls[0] += 1
            if calls[0] == 9:
                raise Preempted
            return step(*a)

        self.step = counting

    monkeypatch.setattr(trainer.Run, "__init__", preempted_at_step_9)
    with pytest.raises(Preempted):
        trainer.train_and_evaluate(cfg, tmp_path / "resumed")
    monkeypatch.undo()
    capsys.readouterr()
    resumed = trainer.train_and_evaluate(cfg, tmp_path / "resumed")
    assert "resumed from the checkpoint of step 8 (epoch 2, step 2 of 6)" in capsys.readouterr().out
    strip = lambda d: {k: v for k, v in d.items() if k not in ("wall_seconds", "session_seconds", "e_step_seconds")}
    assert strip(resumed) == strip(straight)
    lines = [(tmp_path / w / "metrics.jsonl").read_text().splitlines() for w in ("straight", "resumed")]
    assert [strip(json.loads(l)) for l in lines[0]] == [strip(json.loads(l)) for l in lines[1]]


# -- a held-out split scored against the E-step's centroids (eval.split) ---------------------------

@pytest.fixture(scope="module")
def split_folder(tmp_path_factory):
    """train/ (3 x 16 images) and val/ (3 x 5 other images) of the same 3 classes."""
    root = tmp_path_factory.mktemp("split")
    rng = np.random.RandomState(2)
    pixels = lambda c: np.clip(rng.normal(60 + 70 * c, 30, (12, 12, 3)), 0, 255).astype(np.uint8)  # noqa: E731
    write_folder(root / "train", 16, pixels)
    write_folder(root / "val", 5, pixels)
    return str(root)


@pytest.mark.parametrize("streaming", [False, True], ids=["bank", "streamed"])
def test_heldout_split_is_scored_by_nearest_centroid(split_folder, tmp_path, streaming):
    from sklearn.metrics import normalized_mutual_info_score

    from jaxclust.trainer import Run

    cfg = stream_config(split_folder, streaming)
    cfg.data.split, cfg.eval.split = "train", "val"
    run = Run(cfg, tmp_path)
    assert (run.dataset.num_examples, run.heldout.source.num_examples) == (48, 15)
    state, _, record = run.e_step(run.init_state(), 0)
    # independent: the held-out features' nearest centroid by cosine, in numpy
    val_feats = np.asarray(run.embed_all(state, feeder=run.heldout))
    centroids = np.asarray(state.extra["centroids"])
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    nearest = np.argmax(unit(val_feats) @ unit(centroids).T, axis=1)
    assert record["val_nmi"] == pytest.approx(normalized_mutual_info_score(run.heldout.source.labels, nearest), abs=1e-12)
    assert {"val_acc", "val_ari"} <= set(record)
    if streaming:  # the streamed held-out features are the bank's
        bank_run = Run(_banked(cfg), tmp_path)
        np.testing.assert_allclose(val_feats, np.asarray(bank_run.embed_all(state, feeder=bank_run.heldout)), atol=1e-6)


def _banked(cfg):
    banked = cfg.copy_and_resolve_references()
    banked.data.streaming = False
    return banked
