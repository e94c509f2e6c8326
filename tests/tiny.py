"""The tiny network and schedule method tests share: small enough to compile in seconds on a CPU."""
from jaxclust.methods import default_config


def tiny_config(method: str, batch_size: int, **method_keys):
    """`default_config(method)` on a 2-stage ConvNet (4, 8) with a 16 -> 8 projector and a 16-wide
    predictor, 4 epochs of `batch_size`; `method_keys` override the method section."""
    c = default_config(method)
    c.model.backbone = "convnet"
    c.model.convnet_widths = (4, 8)
    c.model.projector_hidden, c.model.projector_dim, c.model.predictor_hidden = 16, 8, 16
    c.train.epochs, c.train.batch_size = 4, batch_size
    c.method.update(method_keys)
    return c
