"""The public API: a trained run loads from its workdir alone; predicting the training images gives
back the last E-step's labels exactly, and `embed` is the E-step's features; bad input gets one sentence."""
import jax
import numpy as np
import pytest

import jaxclust
from jaxclust import trainer
from jaxclust.data.sources import load_digits
from test_train_e2e import tiny_digits_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("api_run")
    cfg = tiny_digits_config(epochs=2)
    summary = jaxclust.train(cfg, workdir)
    return cfg, workdir, summary


def test_predict_on_the_training_images_gives_the_training_labels(trained):
    cfg, workdir, summary = trained
    run = jaxclust.load(workdir)
    images = load_digits().images
    clusters, scores = run.predict(images)
    assert run.labels.shape == (len(images),) and run.epoch == 2
    np.testing.assert_array_equal(clusters, run.labels)
    assert np.all((scores > -1.0 - 1e-6) & (scores < 1.0 + 1e-6))
    assert run.metrics[-1]["nmi"] == summary["nmi"] and run.centroids.shape == (10, 16)


def test_embed_is_the_e_step_features(trained):
    cfg, workdir, _ = trained
    run = jaxclust.load(workdir)
    loop = trainer.Run(cfg, workdir)  # the training loop's own embedding of the whole data set
    expected = np.asarray(loop.embed_all(jax.device_put(run.state, loop.replicated)))
    got = run.embed(load_digits().images, batch_size=100)
    # unit vectors of float32 from the same network: a few ulps of 1 apart at most
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_get_config_overrides():
    cfg = jaxclust.get_config("propos_digits", train__epochs=7, method__psl_weight=0.0)
    assert (cfg.train.epochs, cfg.method.psl_weight, cfg.method.name) == (7, 0.0, "propos")
    with pytest.raises(KeyError, match="train.epoch"):
        jaxclust.get_config("propos_digits", train__epoch=7)


def test_bad_input_is_one_sentence(trained, tmp_path):
    _, workdir, _ = trained
    with pytest.raises(FileNotFoundError, match="holds no jaxclust run"):
        jaxclust.load(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no checkpoint of epoch 99; it has"):
        jaxclust.load(workdir, checkpoint=99)
    run = jaxclust.load(workdir, checkpoint=1)
    assert run.epoch == 1
    with pytest.raises(ValueError, match="must be uint8"):
        run.predict(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        run.predict(np.zeros((0, 8, 8), np.uint8))
