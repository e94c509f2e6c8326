"""The official-fixture lookup: a missing folder skips locally and fails under CI=true."""
import numpy as np
import pytest

import fixtures


def test_missing_folder_fails_under_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    absent = tmp_path / "absent"
    with pytest.raises(pytest.fail.Exception, match="folder not found: looked for .*absent"):
        fixtures.load_official("psl_a.npz", absent)


def test_missing_folder_skips_without_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="folder not found"):
        fixtures.load_official("psl_a.npz", tmp_path / "absent")


def test_missing_file_in_present_folder_fails_under_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="psl_a.npz not found in"):
        fixtures.load_official("psl_a.npz", tmp_path)


def test_environment_variable_points_to_another_fixture_set(tmp_path, monkeypatch):
    np.savez(tmp_path / "psl_a.npz", q=np.ones((2, 3), np.float32))
    monkeypatch.setenv(fixtures.ENV_VAR, str(tmp_path))
    assert fixtures.official_dir() == tmp_path
    np.testing.assert_array_equal(fixtures.load_official("psl_a.npz")["q"], np.ones((2, 3)))
