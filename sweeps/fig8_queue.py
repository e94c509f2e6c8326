"""ProPos Fig. 8: the size of the PSL memory queue (a multiple of 2 x train.batch_size; 0 = off)."""


def get_sweep():
    return {f"queue{q}": {"method.psl_queue_size": q} for q in (0, 1024, 2048, 4096, 8192)}
