"""Atomic writes: what DVC's link cache needs (a new file renamed into place, never a write into
the old one) and what an interrupted step needs (no half-written output, no temp file left)."""

import os
import stat

import pytest

from infomax.files import (DIGEST, DamagedFile, WriteError, atomic_write, content_digest, load_torch,
                           rebuild_command, save_csv, save_json, save_torch)


def test_writes_over_a_read_only_output(tmp_path):
    out = tmp_path / "model.pt"
    out.write_bytes(b"old")
    out.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)      # as DVC leaves a linked output
    save_torch({"w": 1}, out)
    assert load_torch(out, "rebuild") == {"w": 1}


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


# --- content digests -------------------------------------------------------------------------

def _checkpoint():
    import torch

    g = torch.Generator().manual_seed(0)
    return {"format": "x", "state_dict": {"w": torch.randn(64, 64, generator=g), "b": torch.zeros(64, dtype=torch.bfloat16)},
            "history": [{"epoch": 1, "loss": 0.5}], "config": {"beta": 1e-3}}


def test_a_flipped_byte_in_a_weight_is_refused_naming_the_file_and_the_command(tmp_path):
    """torch.load reads a file whose tensor bytes changed without complaint: the digest does not."""
    import torch

    path = tmp_path / "models" / "vib_b1e-3_s0.pt"
    save_torch(_checkpoint(), path)
    blob = bytearray(path.read_bytes())
    i = bytes(blob).find(_checkpoint()["state_dict"]["w"].numpy().tobytes()[:64])
    assert i > 0
    blob[i + 40] ^= 0x10                                   # one bit of one weight
    path.write_bytes(bytes(blob))
    torch.load(path, weights_only=False)                   # torch notices nothing
    rebuild = rebuild_command(path)
    with pytest.raises(DamagedFile) as e:
        load_torch(path, rebuild)
    assert str(path) in str(e.value) and "is damaged" in str(e.value) and rebuild in str(e.value)


def test_digest_round_trip_and_sensitivity(tmp_path):
    ck = _checkpoint()
    save_torch(ck, tmp_path / "a.pt")
    got = load_torch(tmp_path / "a.pt", "")
    assert DIGEST not in got and content_digest(got) == content_digest(ck)
    save_torch(load_torch(tmp_path / "a.pt", ""), tmp_path / "b.pt")       # load, save again: same content
    assert load_torch(tmp_path / "b.pt", "").keys() == ck.keys()
    for change in (lambda c: c["config"].update(beta=1e-2), lambda c: c["history"].append(1),
                   lambda c: c["state_dict"]["b"].__setitem__(0, 1.0), lambda c: c.update(format="y")):
        other = _checkpoint()
        change(other)
        assert content_digest(other) != content_digest(ck)


def test_a_file_without_a_digest_or_truncated_is_refused(tmp_path):
    import torch

    torch.save({"w": 1}, tmp_path / "old.pt")
    with pytest.raises(DamagedFile, match="old.pt carries no content digest.*; make it"):
        load_torch(tmp_path / "old.pt", "make it")
    save_torch(_checkpoint(), tmp_path / "t.pt")
    (tmp_path / "t.pt").write_bytes((tmp_path / "t.pt").read_bytes()[:-100])
    with pytest.raises(DamagedFile, match="t.pt is corrupt or truncated"):
        load_torch(tmp_path / "t.pt", "make it")


# --- write failures name the path and the cause --------------------------------------------------

@pytest.mark.parametrize("err,cause", [(28, "no space left on the device"), (30, "the file system is read-only"),
                                       (13, "permission denied")])
def test_write_failures_name_path_and_cause(tmp_path, monkeypatch, err, cause):
    out = tmp_path / "claims.json"
    save_json({"old": 1}, out)

    def failing(f):
        raise OSError(err, os.strerror(err))

    with pytest.raises(WriteError) as e:
        atomic_write(out, failing, mode="w")
    assert str(out) in str(e.value) and cause in str(e.value)
    assert out.read_text() == '{\n "old": 1\n}' and os.listdir(tmp_path) == ["claims.json"]   # old kept, no temp


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_names_the_file_for_torch_files_too(tmp_path, monkeypatch):
    """A torch file is serialised in memory first, so a full disk is the file write's ENOSPC (torch's
    own writer would say 'unexpected pos ...')."""
    import builtins

    real_open = builtins.open

    def full_disk(path, mode="r", *a, **k):
        if "w" in mode and str(path).startswith(str(tmp_path)):
            return real_open("/dev/full", mode, *a, **k)
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", full_disk)
    with pytest.raises(WriteError, match=r"cannot write .*m\.pt: no space left on the device"):
        save_torch(_checkpoint(), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_a_running_snakemake_in_the_folder_is_found_and_a_killed_one_is_not(tmp_path):
    """The lock advice (issue 31): a second run is told another still runs (common.smk stops it)
    only while a Snakemake process with its locks lives in the folder."""
    import subprocess
    import sys

    from infomax.files import running_snakemake

    locks = tmp_path / ".snakemake/locks"
    locks.mkdir(parents=True)
    assert running_snakemake(tmp_path) is None                      # no locks
    (locks / "0.input.lock").write_text("x")
    assert running_snakemake(tmp_path) is None                      # locks of a killed run: --unlock fits
    p = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 30"], cwd=tmp_path)
    try:
        for _ in range(50):
            if running_snakemake(tmp_path) == p.pid:
                break
            import time
            time.sleep(0.05)
        assert running_snakemake(tmp_path) == p.pid
        assert running_snakemake(tmp_path / ".snakemake") is None  # another folder
    finally:
        p.kill()
        p.wait()
    assert running_snakemake(tmp_path) is None
