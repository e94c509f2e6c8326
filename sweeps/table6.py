"""ProPos Table 6 (ablations), on top of a ProPos config: BYOL, ProPos, and ProPos without each part."""


def get_sweep():
    return {
        # official cifar10_r18_byol.yml: no PSL, no noise, EMA increasing to 1
        "byol": {"method.psl_weight": 0.0, "method.sigma": 0.0, "method.ema_increase": True},
        "propos": {},
        "wo_psl": {"method.psl_weight": 0.0},
        "wo_psa": {"method.sigma": 0.0},
        "wo_psl_uniformity": {"method.psl_terms": "alignment"},
        "wo_psl_alignment": {"method.psl_terms": "uniformity"},
    }
