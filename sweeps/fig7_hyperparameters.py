"""ProPos Fig. 7: k-means every r epochs, sigma, lambda and the projection dimension, one at a time.

Backbones and augmentation removal depend on the data set; give them as extra grid points, e.g.
{"resnet34": {"model.backbone": "resnet34"}} or {"no_jitter": {"augment.jitter_prob": 0.0}}.
"""


def get_sweep():
    grid = {}
    grid.update({f"every{r}": {"cluster.every": r} for r in (1, 2, 5, 10, 20)})
    grid.update({f"sigma{s:g}": {"method.sigma": s} for s in (0.0, 0.0001, 0.001, 0.01, 0.1)})
    grid.update({f"lambda{w:g}": {"method.psl_weight": w} for w in (0.01, 0.05, 0.1, 0.5, 1.0)})
    grid.update({f"dim{d}": {"model.projector_dim": d} for d in (32, 64, 128, 256, 512)})
    return grid
