"""Test setup: eight simulated CPU devices, set before anything imports jax; a private temp dir."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_tempdir(tmp_path_factory):
    """Every tfds builder made without local data leaves an empty tmp*tfds folder in the system temp
    dir (DatasetInfo.initialize_from_bucket), about a hundred per run. Point tempfile (and, through
    TMPDIR, the subprocesses) at a folder of this session and remove it at the end."""
    folder = tmp_path_factory.mktemp("tempdir")  # pytest's basetemp is fixed before tempdir changes
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(folder), str(folder)
    yield folder
    tempfile.tempdir = saved_tempdir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env
    shutil.rmtree(folder, ignore_errors=True)
