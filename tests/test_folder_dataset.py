"""FolderDataset: whole-folder saves that never lose the last good copy."""

from __future__ import annotations

import shutil

import pytest
from kedro.io import DatasetError

from reclora_pipeline.datasets import FolderDataset


def _folder(path, **files):
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_save_replaces_the_whole_folder(tmp_path):
    dataset = FolderDataset(str(tmp_path / "adapters/reclora"))
    dataset.save(_folder(tmp_path / "first", a="1", b="2"))
    dataset.save(_folder(tmp_path / "second", a="3"))
    loaded = dataset.load()
    assert sorted(p.name for p in loaded.iterdir()) == ["a"]
    assert (loaded / "a").read_text() == "3"
    assert [p.name for p in (tmp_path / "adapters").iterdir()] == ["reclora"]


def test_failed_copy_keeps_the_last_good_folder(tmp_path, monkeypatch):
    dataset = FolderDataset(str(tmp_path / "adapter"))
    dataset.save(_folder(tmp_path / "good", a="good"))

    def broken_copy(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", broken_copy)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(_folder(tmp_path / "new", a="new"))
    assert (dataset.load() / "a").read_text() == "good"
    assert [p.name for p in tmp_path.glob(".adapter*")] == []


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist: run the node"):
        FolderDataset(str(tmp_path / "nothing")).load()
    with pytest.raises(DatasetError, match="it is not a folder"):
        FolderDataset(str(tmp_path / "x")).save(tmp_path / "missing")
