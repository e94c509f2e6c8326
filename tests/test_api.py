"""The public API: a trained run loads from its workdir alone; predicting the training images gives
back the last E-step's labels exactly, and `embed` is the E-step's features; bad input gets one sentence."""
import csv
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

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


ROOT = Path(__file__).resolve().parents[1]


def predict_command(*args):
    return subprocess.run([sys.executable, str(ROOT / "launch" / "predict.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_predict_command_on_an_npz_gives_the_training_labels(trained, tmp_path):
    _, workdir, summary = trained
    digits = load_digits()
    np.savez(tmp_path / "digits.npz", images=digits.images[..., 0], labels=digits.labels)
    done = predict_command(f"--workdir={workdir}", f"--images={tmp_path / 'digits.npz'}", f"--out={tmp_path / 'out'}",
                           "--embeddings")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "out" / "assignments.csv")
    run = jaxclust.load(workdir)
    np.testing.assert_array_equal([int(r["cluster"]) for r in rows], run.labels)
    assert [int(r["class"]) for r in rows] == digits.labels.tolist() and rows[5]["file"] == "5"
    assert np.load(tmp_path / "out" / "embeddings.npy").shape == (len(rows), 16)
    import json

    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["nmi"] == summary["nmi"] and sum(written["cluster_sizes"]) == len(rows)  # the E-step's own score
    again = predict_command(f"--workdir={workdir}", f"--images={tmp_path / 'digits.npz'}", f"--out={tmp_path / 'out'}")
    assert again.returncode == 2 and "already holds assignments.csv" in again.stderr  # nothing overwritten


def test_predict_command_on_a_folder_names_the_files(trained, tmp_path):
    _, workdir, _ = trained
    digits = load_digits()
    folder = tmp_path / "images"
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
    picks = list(range(12))
    for i in picks:
        Image.fromarray(digits.images[i, ..., 0]).save(folder / ("a" if i < 6 else "b") / f"img{i:02d}.png")
    done = predict_command(f"--workdir={workdir}", f"--images={folder}", f"--out={tmp_path / 'out'}")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "out" / "assignments.csv")
    assert [Path(r["file"]).name for r in rows] == [f"img{i:02d}.png" for i in picks]
    assert [int(r["class"]) for r in rows] == [0] * 6 + [1] * 6
    clusters, _ = jaxclust.load(workdir).predict(digits.images[picks])  # PNG is lossless, 8x8 as trained: exact
    assert [int(r["cluster"]) for r in rows] == clusters.tolist()
    (tmp_path / "empty").mkdir()
    bad = predict_command(f"--workdir={workdir}", f"--images={tmp_path / 'empty'}", f"--out={tmp_path / 'out2'}")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "has no images" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_images_of_another_channel_count_and_size_are_brought_to_the_run(trained, tmp_path):
    """RGB copies of the grey digits are read as RGB and turned grey with PIL's luma, which maps
    (v, v, v) to v exactly: the same clusters as the originals. Images of another size are resized on
    load to the run's input size."""
    _, workdir, _ = trained
    run = jaxclust.load(workdir)
    grey = load_digits().images[:20]
    rgb, large = tmp_path / "rgb", tmp_path / "large"
    rgb.mkdir(), large.mkdir()
    for i, image in enumerate(grey[..., 0]):
        Image.fromarray(np.repeat(image[..., None], 3, axis=-1)).save(rgb / f"{i:02d}.png")
        Image.fromarray(np.kron(image, np.ones((3, 3), np.uint8))).save(large / f"{i:02d}.png")  # 24x24
    images, labels, names = run.read_images(rgb)
    assert images.shape == (20, 8, 8, 3) and labels is None and len(names) == 20
    np.testing.assert_array_equal(run.predict(images)[0], run.predict(grey)[0])
    images, _, _ = run.read_images(large)
    assert images.shape == (20, 8, 8, 1) and run.predict(images)[0].shape == (20,)


def test_read_images_of_a_list_of_files(trained, tmp_path):
    """A list of files reads as the folder of the same files does (same pixels, names in the given
    order); an empty list or a missing file is one sentence."""
    _, workdir, _ = trained
    run = jaxclust.load(workdir)
    grey = load_digits().images[:5, ..., 0]
    files = [tmp_path / f"{i}.png" for i in (3, 1, 4, 0, 2)]
    for i, path in zip((3, 1, 4, 0, 2), files):
        Image.fromarray(grey[i]).save(path)
    images, labels, names = run.read_images(files)
    assert names == [str(f) for f in files] and labels is None
    np.testing.assert_array_equal(images[..., 0], grey[[3, 1, 4, 0, 2]])  # 8x8 PNGs, as trained: exact
    with pytest.raises(ValueError, match="empty list"):
        run.read_images([])
    with pytest.raises(FileNotFoundError, match="do not exist"):
        run.read_images([tmp_path / "nope.png"])
