"""audit/decoding.py rescales decoder output block by block (issue 17): the same uint8
pixels as rescaling the whole array in float64 at once, with bounded extra memory."""
import tracemalloc

import numpy as np
import pytest

from audit import decoding
from audit.decoding import DecodeError, decode_images


def _old_to_uint8(arr):
    """The whole-array rescale that the blocks replace (the reference)."""
    if arr.dtype == np.uint8:
        return arr
    x = arr.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DecodeError("the decoder returned NaN or infinite pixel values")
    if arr.dtype == np.bool_:
        x = x * 255.0
    elif np.issubdtype(arr.dtype, np.floating) and x.size:
        lo, hi = float(x.min()), float(x.max())
        if lo >= 0.0 and hi <= 1.0:
            x = x * 255.0
        elif lo >= -1.0 and hi <= 1.0:
            x = (x + 1.0) * 127.5
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _old_join(parts):
    """How decode_images joined the decoder's batches before (the reference)."""
    if len({p.dtype == np.uint8 for p in parts}) > 1:
        parts = [p.astype(np.float64) for p in parts]
    return _old_to_uint8(parts[0] if len(parts) == 1 else np.concatenate(parts))


def _images(kind, shape, rng):
    if kind == "unit":
        return rng.random(shape, dtype=np.float32)
    if kind == "signed":
        return (rng.random(shape) * 2 - 1).astype(np.float32)
    if kind == "wide":
        return rng.normal(100, 120, shape)
    if kind == "half":
        return rng.random(shape).astype(np.float16)
    if kind == "bool":
        return rng.random(shape) < 0.5
    if kind == "int16":
        return rng.integers(-300, 600, shape).astype(np.int16)
    if kind == "int64":
        return rng.integers(-2**40, 2**40, shape)
    raise AssertionError(kind)


KINDS = ["unit", "signed", "wide", "half", "bool", "int16", "int64"]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few images, so small inputs cross many block boundaries."""
    monkeypatch.setattr(decoding, "_CHUNK_BYTES", 3 * 5 * 4 * 3 * 8 + 7)   # 3 rows
    return decoding


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_give_the_whole_array_pixels(small_blocks, kind):
    rng = np.random.default_rng(KINDS.index(kind))
    arr = _images(kind, (16, 5, 4, 3), rng)
    out = decoding._to_uint8(arr)
    assert out.dtype == np.uint8 and out.shape == arr.shape
    assert np.array_equal(out, _old_to_uint8(arr))
    moved = np.moveaxis(_images(kind, (16, 3, 5, 4), rng), 1, -1)  # channels-first view
    assert np.array_equal(decoding._to_uint8(moved), _old_to_uint8(moved))


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("uint8", "float32"),
                                    ("bool", "float32"), ("float16", "int8"),
                                    ("uint8", "bool"), ("int64", "float32")])
def test_batches_of_mixed_dtypes_are_rescaled_as_if_joined(small_blocks, dtypes):
    rng = np.random.default_rng(7)
    outs = {"float32": lambda s: rng.random(s, dtype=np.float32),
            "float64": lambda s: rng.random(s) * 2 - 1,
            "float16": lambda s: rng.random(s).astype(np.float16),
            "uint8": lambda s: rng.integers(0, 2, s, dtype=np.uint8),
            "int8": lambda s: rng.integers(-5, 9, s, dtype=np.int8),
            "int64": lambda s: rng.integers(-3, 300, s),
            "bool": lambda s: rng.random(s) < 0.5}
    parts = [outs[dtypes[i % 2]]((4, 5, 4, 3)) for i in range(5)]
    calls = iter(parts)
    got = decode_images(lambda z: next(calls), np.zeros((20, 2)), batch_size=4)
    assert np.array_equal(got, _old_join(parts))


def test_nan_in_a_late_block_is_still_refused(small_blocks):
    arr = np.random.default_rng(3).random((16, 5, 4, 3))
    arr[-1, 0, 0, 0] = np.nan
    with pytest.raises(DecodeError, match="NaN or infinite"):
        decoding._to_uint8(arr)


def test_empty_and_uint8_inputs():
    assert decoding._to_uint8(np.zeros((0, 2, 2, 1), np.float32)).shape == (0, 2, 2, 1)
    u = np.ones((2, 2, 2, 1), np.uint8)
    assert decoding._to_uint8(u) is u


def _peak(fn, *args):
    tracemalloc.start()
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_rescale_extra_memory_is_a_block_not_the_whole_array(monkeypatch):
    monkeypatch.setattr(decoding, "_CHUNK_BYTES", 2**20)
    arr = np.random.default_rng(5).random((1500, 16, 16, 3), dtype=np.float32)  # 4.4 MiB
    old, old_peak = _peak(_old_to_uint8, arr)      # float64 copies: ~3x 8.8 MiB
    new, new_peak = _peak(decoding._to_uint8, arr)  # uint8 output + ~1 MiB blocks
    assert np.array_equal(new, old)
    assert new_peak < old_peak / 5, (new_peak, old_peak)
    assert new_peak < arr.size + 4 * 2**20


def test_decode_images_does_not_join_the_batches_first(monkeypatch):
    monkeypatch.setattr(decoding, "_CHUNK_BYTES", 2**20)
    arr = np.random.default_rng(6).random((1500, 16, 16, 3), dtype=np.float32)

    def dec(z):                            # views of arr: the decoder allocates nothing
        return arr[int(z[0, 0]):int(z[0, 0]) + len(z)]
    z = np.repeat(np.arange(1500, dtype=np.float32)[:, None], 2, axis=1)
    old, old_peak = _peak(lambda: _old_join([dec(z[i:i + 256]) for i in range(0, 1500, 256)]))
    new, new_peak = _peak(decode_images, dec, z)
    assert np.array_equal(new, old)
    assert new_peak < old_peak / 5, (new_peak, old_peak)
