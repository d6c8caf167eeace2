"""The one decoder call (audit/decoding.py): shapes, channel order, value ranges, batching,
and every failure turned into one DecodeError line."""
import numpy as np
import pytest

from audit.decoding import DecodeError, decode_images

Z = np.random.default_rng(0).normal(size=(5, 3))


def test_uint8_channels_last_is_returned_unchanged():
    imgs = np.random.default_rng(1).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    out = decode_images(lambda z: imgs[:len(z)], Z)
    assert out.dtype == np.uint8 and np.array_equal(out, imgs)


def test_decoder_gets_float32_batches_and_outputs_are_joined_in_order():
    calls = []

    def dec(z):
        calls.append((z.dtype, len(z)))
        return np.repeat(np.round(z[:, :1] * 10 + 100)[:, :, None, None], 2, axis=2) \
            .repeat(2, axis=1).astype(np.uint8)
    out = decode_images(dec, Z.astype(np.float64), batch_size=2)
    assert calls == [(np.float32, 2), (np.float32, 2), (np.float32, 1)]
    assert out.shape == (5, 2, 2, 1)
    assert np.array_equal(out[:, 0, 0, 0], np.round(Z[:, 0].astype(np.float32) * 10 + 100))


@pytest.mark.parametrize("shape,expected", [
    ((5, 4, 6), (5, 4, 6, 1)),             # no channel axis
    ((5, 4, 6, 1), (5, 4, 6, 1)),
    ((5, 3, 8, 6), (5, 8, 6, 3)),          # channels-first
    ((5, 1, 8, 6), (5, 8, 6, 1)),
    ((5, 8, 6, 4), (5, 8, 6, 4)),
])
def test_shapes_are_normalised_to_n_h_w_c(shape, expected):
    assert decode_images(lambda z: np.zeros((len(z),) + shape[1:]), Z).shape == expected


def test_channels_first_keeps_pixels_in_place():
    chw = np.random.default_rng(2).integers(0, 256, (5, 3, 6, 7), dtype=np.uint8)
    out = decode_images(lambda z: chw, Z)
    assert np.array_equal(out[2, 4, 5], chw[2, :, 4, 5])


@pytest.mark.parametrize("values,expected", [
    ([0.0, 0.5, 1.0], [0, 128, 255]),           # floats in [0, 1]
    ([-1.0, 0.0, 1.0], [0, 128, 255]),          # floats in [-1, 1]
    ([-5.0, 100.4, 300.0], [0, 100, 255]),      # other numbers: rounded, clipped
])
def test_float_ranges(values, expected):
    v = np.array(values)

    def dec(z):
        return np.broadcast_to(v[None, :, None, None], (len(z), 3, 2, 1)).copy()
    out = decode_images(dec, Z)
    assert out[0, :, 0, 0].tolist() == expected


def test_integer_and_bool_outputs():
    assert decode_images(lambda z: np.full((len(z), 2, 2), 300, dtype=np.int64), Z).max() == 255
    assert decode_images(lambda z: np.ones((len(z), 2, 2), dtype=bool), Z).max() == 255


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    out = decode_images(lambda z: torch.ones(len(z), 3, 8, 8), Z)
    assert out.shape == (5, 8, 8, 3) and out.max() == 255


@pytest.mark.parametrize("decoder,match", [
    (lambda z: (_ for _ in ()).throw(RuntimeError("no GPU\nmore detail")),
     r"^RuntimeError: no GPU$"),
    (lambda z: np.zeros((len(z) + 1, 4, 4, 3)), r"returned shape \(6, 4, 4, 3\); expected \(5,"),
    (lambda z: np.zeros((len(z), 5, 6, 7)), r"returned shape \(5, 5, 6, 7\)"),
    (lambda z: np.zeros(len(z)), r"returned shape \(5,\)"),
    (lambda z: np.full((len(z), 2, 2), np.nan), r"NaN or infinite"),
    (lambda z: np.full((len(z), 2, 2), "a"), r"not numbers"),
    (lambda z: None, r"returned shape \(\)"),
])
def test_failures_are_one_line_decode_errors(decoder, match):
    with pytest.raises(DecodeError, match=match) as info:
        decode_images(decoder, Z)
    assert "\n" not in str(info.value)


def test_batches_of_different_sizes_are_an_error():
    sizes = iter([4, 5])

    def dec(z):
        s = next(sizes)
        return np.zeros((len(z), s, s))
    with pytest.raises(DecodeError, match="different sizes"):
        decode_images(dec, Z[:4], batch_size=2)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError):
        decode_images(lambda z: z, np.zeros(3))
    with pytest.raises(ValueError):
        decode_images(lambda z: z, np.zeros((0, 3)))
    with pytest.raises(ValueError):
        decode_images(lambda z: z, Z, batch_size=0)
