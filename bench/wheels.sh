#!/usr/bin/env bash
# The wheel folder for bench/gpu.py --wheels DIR on a GPU machine without network: the packages a CUDA
# image with jax, flax, optax, orbax and torch usually lacks, as wheels for that machine's Python
# (PYVER, default 3.12, the CUDA image's; x86-64 Linux). Run it where pip reaches the package index:
#
#     [PYVER=3.12] bash bench/wheels.sh [DIR] [MORE_NAMES...]        # DIR defaults to .whl
#
# ml-collections and tensorboardX: jaxclust's dependencies; tqdm: the official torch_clustering k-means
# module's, for the E-step's PyTorch row (bench/gpu.py loads only its k-means modules). Their own dependencies (absl-py,
# PyYAML, protobuf, numpy, packaging) come with such images; name any other missing one after DIR. Keep
# DIR out of git (e.g. `echo /.whl/ >> .git/info/exclude`).
set -euo pipefail
dir="${1:-.whl}"
shift || true
# a name added after DIR may ship compiled wheels only (PyYAML, protobuf): the platform and Python are
# those of the GPU machine
python3 -m pip download --no-deps --only-binary=:all: --python-version "${PYVER:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir" ml-collections tensorboardX tqdm "$@"
ls -l "$dir"
echo "then, on the GPU machine: python bench/gpu.py --wheels $dir --out gpu_table.md"
