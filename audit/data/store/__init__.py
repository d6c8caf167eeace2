"""The latent store: a folder other tools can read without latent-audit.

::

    STORE/
      manifest.json            format, n, dim, dtype, shards (file + rows), fingerprint,
                               encoder, source, created
      latents/part-00000.npy   float32 (rows, dim) shards, in row order
      latents/part-00001.npy   ...
      metadata.parquet         one row per latent, same order; column `id` first
      thumbnails.npy           optional: uint8 (n, 48, 48, 3) image thumbnails

Reading it needs only NumPy and a Parquet reader::

    m = json.load(open("STORE/manifest.json"))
    z = np.concatenate([np.load(f"STORE/{s['file']}") for s in m["shards"]])
    meta = pd.read_parquet("STORE/metadata.parquet")      # meta["id"][i] is row i of z

``StoreWriter`` writes one batch by batch in constant memory (a shard every ``SHARD_BYTES``)
and atomically (a temporary folder renamed into place); ``write_latents`` writes arrays and
``write_store`` a ``LatentSet`` as the whole ``--out`` folder; ``read_store`` reads the
shards by memory map into one preallocated array, or returns a single shard memory-mapped
(``mmap=True``). The full description is in docs/inputs.md and docs/scale.md.
"""
from .layout import (SHARD_BYTES, STORE_FORMAT, content_fingerprint, is_store, read_manifest,
                     rows_per_shard)
from .read import StoreData, iter_store_shards, load_store_set, read_store
from .write import StoreWriter, store_from_set, store_output, write_latents, write_store

__all__ = ["STORE_FORMAT", "SHARD_BYTES", "StoreData", "StoreWriter", "is_store",
           "rows_per_shard", "write_latents", "write_store", "store_output", "read_store",
           "read_manifest", "iter_store_shards", "store_from_set", "load_store_set",
           "content_fingerprint"]
