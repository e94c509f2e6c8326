"""ProPos Fig. 6: the number of clusters K (over- and under-clustering)."""


def get_sweep():
    return {f"k{k}": {"cluster.num_clusters": k} for k in (5, 10, 20, 30, 40, 50)}
