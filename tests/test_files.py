"""Atomic writes: what DVC's link cache needs (a new file renamed into place, never a write into
the old one) and what an interrupted step needs (no half-written output, no temp file left)."""

import os
import stat

import pytest

from infomax.files import atomic_write, save_csv, save_json, save_torch


def test_writes_over_a_read_only_output(tmp_path):
    out = tmp_path / "model.pt"
    out.write_bytes(b"old")
    out.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)      # as DVC leaves a linked output
    save_torch({"w": 1}, out)
    import torch

    assert torch.load(out, weights_only=False) == {"w": 1}


@pytest.mark.parametrize("save", [
    lambda p: save_torch({"w": 2}, p),
    lambda p: save_json({"a": 1}, p),
    lambda p: save_csv([{"a": 1}], ["a"], p),
    lambda p: atomic_write(p, lambda f: f.write(b"new")),
])
def test_a_hardlinked_cache_copy_is_never_written_through(tmp_path, save):
    """With `cache.type hardlink` the workspace file and the DVC cache object are one inode: a
    write into the file would silently corrupt the cache.  The rename gives the output a new inode."""
    cache = tmp_path / "cache_object"
    cache.write_bytes(b"cached content")
    cache.chmod(0o444)
    out = tmp_path / "out"
    os.link(cache, out)
    save(out)
    assert cache.read_bytes() == b"cached content"
    assert out.read_bytes() != b"cached content"
    assert os.stat(out).st_ino != os.stat(cache).st_ino


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "metrics.csv"
    out.write_text("old\n")

    def boom(f):
        f.write("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(out, boom, mode="w")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_link_or_copy_links_and_stamps_and_falls_back_to_a_copy(tmp_path, monkeypatch):
    import os

    from infomax.files import link_or_copy

    src = tmp_path / "group/a.pt"
    src.parent.mkdir()
    src.write_bytes(b"weights")
    os.utime(src, (1_000_000, 1_000_000))                   # an old file, as a group's model is
    dest = tmp_path / "models/a.pt"
    assert link_or_copy(src, dest).startswith("linked")
    assert dest.samefile(src) and dest.stat().st_mtime > 1_000_000      # stamped now
    assert link_or_copy(src, dest).startswith("linked")                 # a rerun replaces it

    def no_links(*a):
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    other = tmp_path / "copy/a.pt"
    assert "no hard link: cross-device link" in link_or_copy(src, other)
    assert other.read_bytes() == b"weights" and not other.samefile(src)
