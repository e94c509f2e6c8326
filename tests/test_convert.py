"""PyTorch ProPos checkpoints -> jaxclust: same features in eval mode as the official network.

The torch model is built here with torch.nn in the official layout (Hzzone/ProPos network/resnet.py:
a torchvision ResNet-18 re-assembled as nn.Sequential of its children, CIFAR stem, max-pool dropped,
fc -> Flatten; byol_wrapper.py: projector/predictor Linear-BN1d-ReLU-Linear), with random weights
and random BatchNorm statistics, saved as the official checkpoint dict {'byol': state_dict}.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxclust import convert  # noqa: E402
from jaxclust.methods import default_config  # noqa: E402
from jaxclust.methods import propos  # noqa: E402


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (same attribute names, hence same state-dict keys)."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


def official_cifar_resnet18(width=64):
    """network/resnet.py ResNet('resnet18', cifar=True)(): children of torchvision's resnet18 in order,
    conv1 replaced by a 3x3/s1 conv, MaxPool2d dropped, fc replaced by Flatten. (width: 64 officially;
    smaller only to keep the end-to-end test fast.)"""
    layers, inplanes = [], width
    for s, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
        blocks = [BasicBlock(inplanes, planes, 1 if s == 0 else 2), BasicBlock(planes, planes)]
        layers.append(nn.Sequential(*blocks))
        inplanes = planes
    return nn.Sequential(
        nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(inplace=True), *layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(1),
    )


def mlp(in_dim, hidden, out_dim):
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))


class BYOLWrapper(nn.Module):
    """The attributes of models/propos/byol_wrapper.py BYOLWrapper that hold tensors."""

    def __init__(self, hidden=4096, dim=256, width=64):
        super().__init__()
        self.encoder_q, self.projector_q = official_cifar_resnet18(width), mlp(8 * width, hidden, dim)
        self.encoder_k, self.projector_k = official_cifar_resnet18(width), mlp(8 * width, hidden, dim)
        self.predictor = mlp(dim, hidden, dim)
        self.encoder = nn.Sequential(self.encoder_k, self.projector_k)


def randomize_batchnorm(model, gen):
    """Non-trivial BN affine parameters and running statistics, so eval mode is really tested."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.weight.data = 1 + 0.2 * torch.randn(n, generator=gen)
            m.bias.data = 0.1 * torch.randn(n, generator=gen)
            m.running_mean.data = 0.1 * torch.randn(n, generator=gen)
            m.running_var.data = 0.5 + torch.rand(n, generator=gen)


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = BYOLWrapper()
    randomize_batchnorm(model, gen)
    model.eval()
    path = tmp_path_factory.mktemp("torch") / "checkpoint.tar"
    torch.save({"byol": model.state_dict(), "epoch": 1000}, path)
    images = torch.randn(4, 3, 32, 32, generator=gen)
    return model, path, images


def jax_state(cfg):
    """The method and a TrainState of zeros with its structure (eval_shape: no compilation, fast)."""
    method = propos.build(cfg, num_examples=8, steps_per_epoch=1)
    shapes = jax.eval_shape(method.init, jax.random.key(0), jnp.zeros((2, 32, 32, 3)))
    return method, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def test_state_dict_keys_have_the_official_layout(official):
    model, _, _ = official
    keys = model.state_dict().keys()
    for key in ("encoder_k.0.weight", "encoder_k.1.running_var", "encoder_k.3.0.conv1.weight",
                "encoder_k.4.0.downsample.1.weight", "encoder_k.6.1.bn2.bias", "projector_k.3.weight",
                "predictor.1.running_mean", "encoder.0.0.weight", "encoder.1.0.weight"):
        assert key in keys


def test_converted_network_computes_the_official_features(official):
    model, path, images = official
    cfg = default_config("propos")  # ResNet-18, CIFAR stem, projector 4096 -> 256: the official CIFAR-10 network
    method, state = jax_state(cfg)
    state, loaded = convert.load_into_state(state, convert.convert_byol_state_dict(convert.load_torch_state_dict(str(path))))
    assert sorted(loaded) == ["online/backbone", "online/projector", "predictor", "target/backbone", "target/projector"]

    x = jnp.asarray(images.permute(0, 2, 3, 1).numpy())  # NCHW -> NHWC
    with torch.no_grad():
        torch_target = model.projector_k(model.encoder_k(images)).numpy()
        torch_online = model.projector_q(model.encoder_q(images))
        torch_pred = model.predictor(torch_online).numpy()
    net, predictor = propos.EncoderProjector(cfg.model), propos.MLPHead(cfg.model.predictor_hidden, cfg.model.projector_dim)
    target = net.apply({"params": state.target_params, "batch_stats": state.target_batch_stats}, x, train=False)
    online = net.apply({"params": state.params["net"], "batch_stats": state.batch_stats["net"]}, x, train=False)
    pred = predictor.apply({"params": state.params["predictor"], "batch_stats": state.batch_stats["predictor"]}, online, train=False)

    assert np.abs(torch_target).max() > 1e-2  # not a degenerate comparison
    np.testing.assert_allclose(np.asarray(target), torch_target, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(online), torch_online.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(pred), torch_pred, atol=1e-4, rtol=0)
    # the features the method clusters: l2-normalised target projector output
    normalized = torch.nn.functional.normalize(torch.from_numpy(torch_target), dim=1).numpy()
    assert np.abs(np.asarray(method.embed(state, x)) - normalized).max() < 1e-4


def test_bare_backbone_and_torchvision_names(official):
    model, _, images = official
    sequential = {k: v.numpy() for k, v in model.encoder_k.state_dict().items()}  # preprocess_example.py output
    names = {"0": "conv1", "1": "bn1", "3": "layer1", "4": "layer2", "5": "layer3", "6": "layer4"}
    torchvision = {}
    for key, value in sequential.items():
        head, _, rest = key.partition(".")
        torchvision[f"{names[head]}.{rest}"] = value
    torchvision["fc.weight"] = np.zeros((10, 512), np.float32)  # a classifier is ignored
    a = convert.convert_byol_state_dict(sequential)
    b = convert.convert_byol_state_dict(torchvision)
    assert set(a) == set(b) == {"target"} and set(a["target"]["params"]) == {"backbone"}
    jax.tree.map(np.testing.assert_array_equal, a, b)

    cfg = default_config("propos")
    _, state = jax_state(cfg)
    state, loaded = convert.load_into_state(state, a)
    assert loaded == ["target/backbone"]
    x = jnp.asarray(images.permute(0, 2, 3, 1).numpy())
    feats = propos.build_backbone(cfg.model).apply(
        {"params": state.target_params["backbone"], "batch_stats": state.target_batch_stats["backbone"]}, x, train=False)
    with torch.no_grad():
        want = model.encoder_k(images).numpy()
    np.testing.assert_allclose(np.asarray(feats), want, atol=1e-4, rtol=0)


def test_mismatched_model_is_refused_with_a_hint(official):
    model, _, _ = official
    cfg = default_config("propos")
    cfg.model.stem = "imagenet"
    _, state = jax_state(cfg)
    converted = convert.convert_byol_state_dict(convert.state_dict_to_numpy({"byol": model.state_dict()}))
    with pytest.raises(convert.ConversionError, match="model.stem"):
        convert.load_into_state(state, converted)


def test_launch_evaluate_reports_on_a_pytorch_checkpoint(tmp_path):
    """launch/evaluate.py --torch_checkpoint: the report is computed from the PyTorch network's features."""
    from jaxclust.evaluate.report import default_config as report_config, evaluate

    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = BYOLWrapper(hidden=32, dim=16, width=8)
    randomize_batchnorm(model, gen)
    model.eval()
    ckpt = tmp_path / "checkpoint-1000.tar"
    torch.save({"byol": model.state_dict()}, ckpt)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(4), 10)
    np.savez(tmp_path / "toy.npz", images=images, labels=labels)

    cfg = default_config("propos")
    cfg.data.source, cfg.data.path, cfg.data.image_size = "npz", str(tmp_path / "toy.npz"), 16
    cfg.model.width, cfg.model.projector_hidden, cfg.model.projector_dim, cfg.model.predictor_hidden = 8, 32, 16, 32
    cfg.cluster.num_clusters, cfg.train.batch_size, cfg.train.embed_batch_size = 4, 8, 16
    cfg.optim.warmup_epochs = 0
    rcfg = report_config()
    rcfg.kmeans_restarts, rcfg.knn_k, rcfg.figures = 2, 5, False
    report = evaluate(tmp_path / "eval", cfg, rcfg, torch_checkpoint=str(ckpt))
    assert report["source"]["loaded"] == ["target/backbone", "target/projector", "online/backbone",
                                          "online/projector", "predictor"]
    mean, std = np.array(cfg.augment.mean), np.array(cfg.augment.std)
    x = torch.from_numpy(((images / 255.0 - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
    with torch.no_grad():
        feats = torch.nn.functional.normalize(model.projector_k(model.encoder_k(x)), dim=1).numpy()
    assert report["uniformity"] == pytest.approx(float(feats.std(axis=0, ddof=1).mean()), abs=1e-5)
    assert sum(report["cluster_sizes"]) == 40 and (tmp_path / "eval" / "report" / "report.json").exists()
