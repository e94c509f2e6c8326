"""ProPos Table 10: training on train + test (the paper's setting) against the training split only."""


def get_sweep():
    return {"train_and_test": {}, "train_only": {"data.split": "train"}}
