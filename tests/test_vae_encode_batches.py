"""TrainedVAE.encode turns images into float32 one batch at a time (issue 17): the same
posterior means as converting every image up front, with one batch of extra memory."""
import tracemalloc

import numpy as np
import torch

from audit.encoders.vae import VAE, TrainedVAE


def _vae(shape=(8, 8, 3), latent=4, hidden=16):
    torch.manual_seed(0)
    return TrainedVAE(VAE(int(np.prod(shape)), latent, hidden).eval(), shape, [])


def _old_encode(vae, images, batch_size):
    """The whole-array conversion that the batches replace (the reference)."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float32).reshape(len(images), -1)
                         / 255.0)
    with torch.inference_mode():
        out = [vae.model.encode(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy().astype(np.float32)


def test_batched_conversion_gives_identical_means_in_order():
    vae = _vae()
    images = np.random.default_rng(0).integers(0, 256, (103, 8, 8, 3), dtype=np.uint8)
    for bs in (1, 10, 64, 1024):
        got = vae.encode(images, batch_size=bs)
        assert got.dtype == np.float32 and got.shape == (103, 4)
        assert np.array_equal(got, _old_encode(vae, images, bs))


def test_extra_memory_is_one_batch_not_every_image():
    vae = _vae((16, 16, 3))
    images = np.random.default_rng(1).integers(0, 256, (4096, 16, 16, 3), dtype=np.uint8)

    def peak(fn):
        tracemalloc.start()
        try:
            return fn(), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    old, old_peak = peak(lambda: _old_encode(vae, images, 256))   # float32 of all: 12 MiB+
    new, new_peak = peak(lambda: vae.encode(images, batch_size=256))
    assert np.array_equal(new, old)
    assert new_peak < old_peak / 5, (new_peak, old_peak)
