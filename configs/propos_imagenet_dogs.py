"""ProPos on ImageNet-Dogs with ResNet-34: the official `config/imagenetdogs_r34_propos.yml`.

ImageNet-Dogs (19,500 images, 15 dog classes; Chang et al., DAC) is read as an ImageFolder directory
(--config.data.path=DIR). The paper and the official config disagree on the image size: Table 2 uses
96 px (NMI 69.2, ACC 74.5, ARI 62.7) while the official config trains at 224 px with Gaussian blur
and a Resize(256) + CenterCrop(224) test transform. This config follows the official file, so its
target is the 224-px row of ProPos Table 10: NMI 73.7, ACC 77.5, ARI 67.5. For Table 2 set
data.image_size=96 data.load_size=96 augment.blur_prob=0 augment.test_resized_crop=False.

Images are stored at 256x256 (squashed, PIL bicubic); the test transform then takes the central
224x224, where torchvision would keep the aspect ratio before cropping. Official
`data_resample: true`: cluster-balanced resampling (`train.resample`).
"""
from jaxclust.data.sources import normalization
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "folder"
    c.data.name = "imagenet_dogs"
    c.data.image_size = 224  # official img_size: 224 (96 commented out)
    c.data.load_size = 256  # stored size: room for the Resize(256) + CenterCrop(224) test transform

    c.augment.mean, c.augment.std = normalization("imagenet_dogs")
    c.augment.blur_prob = 0.5  # official use_gaussian_blur: true -> GaussianBlur(23, (0.1, 2)) p=0.5
    c.augment.test_resized_crop = True  # official test_resized_crop: true

    c.model.backbone = "resnet34"  # official encoder_name: resnet34 (ImageNet stem)
    c.model.stem = "imagenet"

    c.method.forward = "v2"  # official v2: true
    c.method.ema_increase = True  # official momentum_increase: true

    c.train.batch_size = 256  # official 64 x 4 GPUs (official issue #10: the batch size matters)
    c.train.resample = True  # official data_resample: true

    c.cluster.num_clusters = 15
    return c
