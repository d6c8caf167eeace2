"""``entanglement``: which attributes the latents encode, and whether editing one moves another.

For the metadata columns named in ``attributes:``:

1. **Probes.** A cross-validated linear probe per attribute (logistic for categorical,
   ridge for numeric) on the z-scored latents: balanced accuracy or R², a bootstrap
   interval and the chance level. An attribute is *encoded* when the interval's lower end
   is above chance.
2. **Joint directions.** One regression of the latents on every attribute at once gives
   each attribute's direction with the others held fixed, so attributes that are merely
   correlated in the data get separate directions. The data-level association of every
   pair is reported beside the representation-level entanglement.
3. **Entanglement matrix.** Cosine between joint directions, and edit leakage: moving a
   latent along A's direction by one standard deviation of A moves B's partial probe (a
   read-out of B that a correlated attribute cannot stand in for) by L(A→B) standard
   deviations of B per standard deviation of A's own read-out. With a decoder and an
   encoder, leakage is also measured through decode → re-encode. A pair is flagged when a
   one-sided test of L > ``leakage_threshold`` (bootstrap standard error) survives
   Benjamini–Hochberg over all tested ordered pairs.
4. **Disentanglement scores** (MIG, DCI, SAP, modularity; disentanglement_lib definitions)
   on the attributes as factors, numeric ones cut into ``factor_bins`` quantile bins; DCI
   and SAP on a seeded subsample of ``dci_max_rows`` rows.
5. **Per-dimension map**: normalised mutual information, latent dimension × attribute, and
   dead dimensions (near-zero variance relative to the others and no attribute).
6. **Sliders and interpolation grids**: decoded images (or the nearest real samples) along
   each attribute's direction and between pairs of data points.
7. **Latent arithmetic consistency**: cosine between an attribute's directions fitted inside
   each group of another attribute, with a permutation test.
8. **Awkward attributes** (one value, missing values, too many levels, numeric with few
   values) are handled explicitly and reported.

Where each step lives: ``check.py`` runs them and assembles the result;
``attributes.py`` (8 and 1), ``directions.py`` (2-3), ``factors.py`` (4-5),
``visuals.py`` (6) and ``consistency.py`` (7) turn the numbers of ``audit.metrics`` into
findings and tables; ``settings.py`` holds the config keys.

See docs/checks/entanglement.md.
"""
from .attributes import prepare_attribute
from .check import EntanglementCheck

__all__ = ["EntanglementCheck", "prepare_attribute"]
