"""jaxclust: deep image clustering in JAX (ProPos and its family). The public API is `jaxclust.api`:
`get_config`, `train`, `load` (imported on first use, so that `import jaxclust.config` stays light)."""

__all__ = ["get_config", "train", "load"]


def __getattr__(name):
    if name in __all__:
        from jaxclust import api

        return getattr(api, name)
    raise AttributeError(f"module 'jaxclust' has no attribute {name!r}")
