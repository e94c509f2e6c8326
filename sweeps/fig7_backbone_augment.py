"""ProPos Fig. 7 (right panels): the backbone, and removing one augmentation at a time.

For the CIFAR configs (torchvision recipe); on digits use the ConvNet widths and the affine/jitter
switches instead, e.g. {"no_affine": {"augment.affine": False}}.
"""


def get_sweep():
    return {
        "resnet18": {"model.backbone": "resnet18"},
        "resnet34": {"model.backbone": "resnet34"},
        "resnet50": {"model.backbone": "resnet50"},
        "no_crop": {"augment.crop": False},
        "no_flip": {"augment.flip_prob": 0.0},
        "no_jitter": {"augment.jitter_prob": 0.0},
        "no_grayscale": {"augment.grayscale_prob": 0.0},
    }
