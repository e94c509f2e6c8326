"""SeCu-Size on STL-10, stage 2 (SeCu App. C.1; seed_secu.md §7.3): fine-tunes a finished stage-1 run
(`secu_stl10.py`) on the 5,000 labelled training images only. Pass stage 1's workdir:

    python launch/main.py --config=configs/secu_stl10_stage2.py --workdir=DIR2 \\
        --config.method.init_from=STAGE1_WORKDIR

The run starts from stage 1's newest checkpoint: its encoder (parameters and BatchNorm statistics) and
the centres of its K = 10 head; the other nine heads are dropped, and the optimiser state, labels, duals
/ counts and the step start fresh. Targets SeCu Table 5 after both stages: SeCu-Size (mean) NMI 69.4,
ACC 80.2, ARI 63.9 (the paper scores the test split; this loop scores the 5,000 training images).
Stage 2 is not in the official code (`run_stl10.sh` is stage 1 only): everything not set here is
stage 1's, as App. C.1 says "other parameters except the number of epochs are the same as the first stage".
"""
from jaxclust.config import sibling


def get_config():
    c = sibling(__file__, "secu_stl10").get_config()
    c.data.unlabelled = False  # App. C.1: "the 5k labelled training images" only, without stage 1's 100k unlabelled
    c.method.num_heads = 1  # App. C.1: only the target head (K = 10) is kept (seed_secu.md §8: "stage 2: only 10")
    c.optim.lr = 0.002  # App. C.1: encoder lr 0.2 -> 0.002 (seed_secu.md §7.3, §8 "stage 2: 0.002")
    c.method.entropy_alpha = 600.0  # App. C.1: alpha 600 = 6 * 5000 / 50 (used with method.constraint=entropy)
    # App. C.1: 100 epochs. Plus the initialisation epoch (encoder lr 0): seed_secu.md §8 counts every row's
    # epochs without it ("epochs (+1 init)": 800 + 100), App. C.1 keeps "other parameters" (the init epoch
    # included) as in stage 1, and stage 2's labels, duals and counts start fresh on a new set of instance
    # ids, so one pass is needed to assign every image before the loss uses last epoch's labels (§4.1, §12.3).
    c.train.epochs = 101  # 1 + 100, as the official --epochs 401 for "400 epochs"
    # Unchanged from stage 1 ("other parameters ... are the same"): K = 10, the train split, centres lr
    # 0.8, min crop 0.2, the pica stem, 10 warm-up epochs, batch 128, weight decay 1e-4, gamma 0.9, dual
    # lr 0.1, tau 0.2, and the temperatures lambda_x 0.05 / lambda_w 1 (seed_secu.md §12.5: STL-10's tw = 1
    # holds in stage 2 too).
    return c
