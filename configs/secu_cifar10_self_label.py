"""SeCu's optional self-labeling stage on CIFAR-10 (SeCu §4.2, Table 5 "with self-labeling": NMI 86.1,
ACC 93.0, ARI 85.7), fine-tuning a finished `secu_cifar10.py` run:

    python launch/main.py --config=configs/secu_cifar10_self_label.py --workdir=DIR2 \\
        --config.method.init_workdir=DIR_OF_THE_SECU_RUN

The stage is the method `secu_self_label` (jaxclust/methods/secu_self_label.py): it reads the SeCu run's
encoder, head-K centres and assignments from its newest checkpoint, and lambda_w and the centres' lr
from its config.json; data, augmentation statistics and model are this file's, as the SeCu run's.

Paper: SGD with momentum 0.9, batch 1024, 100 epochs, confidence threshold 0.9, 10 warm-up epochs on
the fixed SeCu assignments. Not given (seed_secu.md §12.16), our choices: lr 0.2 (SeCu's, unscaled) with
cosine decay to 0 (SeCu's optim.schedule, without the initialisation epoch), weight decay 1e-4, no
class balancing.

Views: "the same weak and strong augmentations as SCAN" (SCAN selflabel.py, utils/common_config.py,
configs/selflabel/selflabel_cifar10.yml). View 2 (the trained prediction) is SCAN's strong transform,
RandomHorizontalFlip -> RandomCrop(32) (the identity on 32x32 images) -> RandAugment(4 ops) ->
Normalize -> Cutout(1 hole, length 16), with PIL semantics (jaxclust/data/randaugment.py). View 1
(the pseudo-label) is SCAN's weak transform, CenterCrop(32) -> Normalize, i.e. the plain image.
Normalisation stays that of the SeCu run being fine-tuned (SCAN's CIFAR-10 statistics are the same).
"""
from jaxclust.config import sibling
from jaxclust.methods import secu_self_label


def get_config():
    c = sibling(__file__, "secu_cifar10").get_config()
    c.method = secu_self_label.method_config()  # threshold 0.9, 10 warm-up epochs on the SeCu labels (paper)
    c.optim.lr = 0.2  # not given; 0.2 as SeCu's own stage (unscaled), then the cosine to 0
    c.optim.frozen_epochs = 0  # no initialisation epoch
    c.optim.warmup_epochs = 0
    c.train.epochs = 100  # paper: 100 epochs on the small data sets
    c.train.batch_size = 1024  # paper

    # SCAN's self-label views (see the docstring): no crop, jitter, grayscale, blur or solarize in either.
    c.augment.crop = False  # 32x32 images at image_size 32: no resize either
    c.augment.affine = False
    c.augment.flip_prob = 0.0  # SCAN weak: no flip
    c.augment.view2.flip_prob = 0.5  # SCAN strong: RandomHorizontalFlip
    c.augment.jitter_prob = 0.0
    c.augment.grayscale_prob = 0.0
    c.augment.blur_prob = 0.0
    c.augment.solarize_prob = 0.0
    c.augment.asymmetric = True
    c.augment.view2.blur_prob = 0.0
    c.augment.view2.solarize_prob = 0.0
    c.augment.view2.randaugment_ops = 4  # SCAN num_strong_augs
    c.augment.view2.cutout_length = 16  # SCAN cutout_kwargs: n_holes 1, length 16 (CIFAR-10/20)
    return c
