"""bench/train_step.py --torch and its PyTorch twin (bench/torch_step.py): same networks, same step.

At tiny sizes: the parameter counts of the PyTorch networks equal jaxclust's, one PyTorch step started
from a jaxclust state computes the same losses and ends at the same weights, EMA target and BatchNorm
statistics as jaxclust's step, and the benchmark's --torch run prints its ratio table.
"""
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.methods import build_method, default_config
from jaxclust.models import count_params
from tiny import tiny_config

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import torch_step  # noqa: E402


def load_train_step_bench():
    spec = importlib.util.spec_from_file_location("bench_train_step", ROOT / "bench" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def jax_parameter_count(cfg, size: int, channels: int) -> int:
    method = build_method(cfg, num_examples=16, steps_per_epoch=2)
    sample = jax.ShapeDtypeStruct((2, size, size, channels), jnp.float32)
    return count_params(jax.eval_shape(method.init, jax.random.key(0), sample).params)


@pytest.mark.parametrize("backbone, size, channels", [("convnet", 28, 1), ("resnet18", 32, 3), ("resnet34", 64, 3)])
def test_parameter_counts_equal_jaxclust(backbone, size, channels):
    cfg = default_config("propos")
    cfg.model.backbone = backbone
    if backbone == "resnet34":
        cfg.model.stem = "imagenet"
    net, predictor = torch_step.build_networks(cfg.model, channels)
    assert torch_step.count_parameters(net, predictor) == jax_parameter_count(cfg, size, channels)


def test_torch_step_matches_jaxclust_step():
    # PSL on (no warm-up) and no PSA noise, whose random draws the two libraries cannot share
    cfg = tiny_config("propos", 8, sigma=0.0)
    cfg.optim.warmup_epochs = 0
    method = build_method(cfg, num_examples=16, steps_per_epoch=2)
    rng = np.random.default_rng(0)
    view1 = rng.normal(size=(8, 8, 8, 3)).astype(np.float32)
    view2 = rng.normal(size=(8, 8, 8, 3)).astype(np.float32)
    indices = np.arange(8, dtype=np.int32)
    labels = rng.integers(0, 4, 16).astype(np.int32)  # 4 of the 10 clusters present: absent rows and columns too

    state = method.init(jax.random.key(0), jnp.asarray(view1[:2]))
    state = state.replace(extra={**state.extra, "pseudo_labels": jnp.asarray(labels)})
    model = torch_step.ProPosTorch(cfg, 3)
    model.load_jax_state(state)
    new_state, metrics = jax.jit(method.train_step)(state, view1, view2, indices, jax.random.key(1))

    def nchw(x):
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()

    loss, align, psl = model.train_step(nchw(view1), nchw(view2), torch.from_numpy(labels[indices]).long(),
                                        lr=float(metrics["lr"]), psl_weight=cfg.method.psl_weight, sigma=0.0,
                                        ema_momentum=float(metrics["ema_momentum"]))
    assert float(psl) > 0.1  # PSL really is part of the compared loss
    np.testing.assert_allclose([float(loss), float(align), float(psl)],
                               [float(metrics["loss"]), float(metrics["align_loss"]), float(metrics["psl_loss"])],
                               rtol=1e-5, atol=1e-6)
    parts = [(model.net, new_state.params["net"], new_state.batch_stats["net"]),
             (model.predictor, new_state.params["predictor"], new_state.batch_stats["predictor"]),
             (model.target, new_state.target_params, new_state.target_batch_stats)]
    for module, params, stats in parts:
        want = torch_step.jax_to_torch_state_dict(params, stats)
        got = module.state_dict()
        for key, value in want.items():
            np.testing.assert_allclose(got[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
    # the step moved the weights: a comparison of unchanged copies would prove nothing
    before = torch_step.jax_to_torch_state_dict(state.params["net"], state.batch_stats["net"])
    assert any(not torch.allclose(before[k], v) for k, v in model.net.state_dict().items() if k in before)


def test_torch_embed_matches_jaxclust_embed():
    cfg = tiny_config("propos", 8)
    cfg.optim.warmup_epochs = 1
    method = build_method(cfg, num_examples=16, steps_per_epoch=2)
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    state = method.init(jax.random.key(0), jnp.zeros((2, 8, 8, 3)))
    # non-trivial running statistics, so that eval mode is checked to read them
    stats = jax.tree.map(lambda v: v + 0.3, state.target_batch_stats)
    state = state.replace(target_batch_stats=stats)
    from jaxclust.data.augment import AugmentConfig, eval_batch

    want = method.embed(state, eval_batch(jnp.asarray(images), AugmentConfig.from_config(cfg.augment), 8))
    model = torch_step.ProPosTorch(cfg, 3)
    model.load_jax_state(state)
    np.testing.assert_allclose(model.embed(torch.from_numpy(images)).numpy(), np.asarray(want), rtol=1e-4, atol=1e-5)


def test_config_the_torch_step_does_not_mirror_is_refused():
    cfg = tiny_config("propos", 8, forward="v2")
    with pytest.raises(ValueError, match="method.forward='v2'"):
        torch_step.check_config(cfg)


def test_train_step_bench_prints_the_ratio_table(capsys):
    bench = load_train_step_bench()
    bench.main(["--config", str(ROOT / "configs" / "propos_digits.py"), "--torch", "--batch_size", "8",
                "--image_size", "8", "--convnet_widths", "4,8", "--steps", "2", "--reps", "1", "--num_images", "32"])
    out = capsys.readouterr().out
    assert "PyTorch layout probe" in out
    assert "parameters: jaxclust" in out
    table = [line for line in out.splitlines() if line.startswith("| ConvNet 4-8, 8, 8x8x1 |")]
    assert [line.split(" | ")[1] for line in table] == ["step, no augmentation", "forward only (embed)"]
    for line in table:
        ours, theirs, ratio = (float(v) for v in line.strip(" |").split(" | ")[2:])
        # the times are printed to 0.1 ms and the ratio (of the unrounded times) to 0.01: it must lie in
        # the range the rounded times allow (at these tiny shapes a time can be a few tenths of a ms)
        half_ms, half_ratio = 0.05, 0.005
        assert ours > 0 and theirs > 0
        low = (ours - half_ms) / (theirs + half_ms) - half_ratio
        high = (ours + half_ms) / max(theirs - half_ms, 1e-9) + half_ratio
        assert low <= ratio <= high, (ours, theirs, ratio)


def load_augment_bench():
    spec = importlib.util.spec_from_file_location("bench_augment", ROOT / "bench" / "augment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_augment_bench_says_how_to_get_torchvision_when_it_is_missing():
    missing = load_augment_bench().torchvision_missing()
    if importlib.util.find_spec("torchvision") is None:
        assert missing.startswith("skipped: torchvision does not import here") and "pip install" in missing
    else:  # installed: importable, or a sentence naming the failure
        assert missing is None or "torchvision does not import" in missing


@pytest.mark.parametrize("kind", ["v1_pil", "v2_pil", "v2_tensor"])
def test_augment_bench_torchvision_recipe_gives_two_normalised_views(kind):
    bench = load_augment_bench()
    if bench.torchvision_missing():
        pytest.skip("torchvision does not import here")
    bank = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    torch.manual_seed(0)
    dataset = bench.TwoViewDataset(bank, bench.torchvision_recipe(kind, 8), tensor_input=kind == "v2_tensor")
    views = [dataset[i] for i in range(4)]
    for v1, v2 in views:
        assert v1.shape == v2.shape == (3, 8, 8) and v1.dtype == torch.float32
    assert any(not torch.equal(v1, v2) for v1, v2 in views)  # random crops, flips and jitter per view
    assert min(float(v.min()) for pair in views for v in pair) < 0  # normalised, not in [0, 1]
