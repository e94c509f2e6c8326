"""PCL v2 on ImageNet-1k, PCL's own setting (salesforce/PCL README: main_pcl.py -a resnet50 --lr 0.03
--batch-size 256 --temperature 0.2 --mlp --aug-plus --cos --exp-dir ...).

ResNet-50 + MLP head (2048-2048-128, no BN), 200 epochs, SGD lr 0.03 (batch 256), momentum 0.9,
wd 1e-4, cosine schedule without warm-up (official --cos: lr * 0.5 (1 + cos(pi epoch / epochs)),
eta_min 0), momentum encoder 0.999, queue and negative prototypes
r = 16,384, temperature 0.2, granularities {25000, 50000, 100000}, ProtoNCE after 20 epochs of
InfoNCE, an E-step every epoch (from --warmup-epoch on). PCL Table 5 scores AMI of the k = 25,000 clustering (0.410); it is the
first granularity, so its labels are the scored ones.

For PCL v1 (paper Tables 1-6, "PCL"): --config.method.head=linear --config.method.temperature=0.1,
no blur, ColorJitter(0.4, 0.4, 0.4, 0.4) always, crop scale (0.2, 1), lr x 0.1 at epochs 120 and 160
(that step schedule is not implemented: optim.schedule has cosine variants only).

Differences kept: the official cosine is per epoch (ours per step); k-means is our spherical one,
not faiss (jaxclust/methods/pcl.py says why), and its k-means++ seeding of 100,000 centres is slow.
"""
from jaxclust.config import base_config
from jaxclust.methods import pcl


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "imagenet2012"  # official: the ImageNet-1k train folder (1.28M images)
    c.data.split = "train"
    c.data.image_size = 224
    c.data.streaming = True  # 1.28M images stream from the host (as propos_imagenet1k.py)

    # official --aug-plus (MoCo v2): RandomResizedCrop(224, (0.2, 1)), ColorJitter(0.4, 0.4, 0.4, 0.1)
    # p=0.8, RandomGrayscale(0.2), GaussianBlur(sigma in [0.1, 2]) p=0.5, HorizontalFlip; all but the
    # crop scale and the blur probability are the defaults (blur kernel 23: 10 % of 224, the official
    # PIL blur has none).
    c.augment.crop_scale = (0.2, 1.0)
    c.augment.blur_prob = 0.5
    # official E-step transform (eval_augmentation): Resize(256) + CenterCrop(224), the default sizes
    c.augment.test_resized_crop = True
    c.augment.mean = (0.485, 0.456, 0.406)  # official ImageNet normalisation
    c.augment.std = (0.229, 0.224, 0.225)

    c.model.backbone = "resnet50"  # official -a resnet50
    c.model.stem = "imagenet"
    c.model.projector_hidden = 2048  # official --mlp: Linear(2048, 2048), ReLU, Linear(2048, 128)
    c.model.projector_dim = 128  # official --low-dim 128

    c.method = pcl.method_config("official")

    c.optim.lr = 0.03  # official --lr 0.03 at batch 256 (x 256/256)
    c.optim.weight_decay = 1e-4  # official --wd, on every parameter
    c.optim.warmup_epochs = 0  # official: no lr warm-up
    c.optim.predictor_lr_mult = 1.0  # no predictor

    c.train.epochs = 200  # official --epochs 200
    c.train.batch_size = 256  # official --batch-size 256 (global, over 4 GPUs)
    c.train.embed_batch_size = 1280  # official E-step loader: 5 x batch size
    c.train.checkpoint_every_epochs = 5  # official: a checkpoint every 5 epochs

    c.cluster.num_clusters = 25000  # PCL Table 5: AMI of k-means with k = 25,000
    c.kmeans.n_init = 5  # only for a scored k not among method.num_clusters
    c.kmeans.max_iter = 20
    c.kmeans.chunk_size = 16384
    return c
