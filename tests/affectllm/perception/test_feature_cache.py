"""The feature cache: round trip keyed by file content, corrupt entries are misses, writes are atomic."""

import torch

from affectllm.perception.cache import FeatureCache, cache_key


def test_round_trip_and_key_changes_with_content(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    k1 = cache_key(f, "whisper-tiny.en")
    cache = FeatureCache(tmp_path / "cache")
    x = torch.randn(3, 4)
    cache.save(k1, {"audio": x}, {"frames": 3})
    tensors, meta = cache.load(k1)
    assert torch.equal(tensors["audio"], x) and meta == {"frames": 3}
    f.write_bytes(b"hello!")
    assert cache_key(f, "whisper-tiny.en") != k1
    assert cache_key(f, "whisper-base") != cache_key(f, "whisper-tiny.en")


def test_corrupt_entry_is_a_miss_and_removed(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.save("abcd-x", {"t": torch.ones(2)})
    p = cache.path("abcd-x")
    p.write_bytes(p.read_bytes()[:20])  # truncated
    assert cache.load("abcd-x") is None
    assert not p.exists()
    assert "abcd-x" not in cache


def test_atomic_write_respects_umask(tmp_path):
    import os
    import stat

    from affectllm.io.files import atomic_write_text

    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "out.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
