"""Generator audits: sample a decoder's prior, decode, re-embed, and measure what comes out.

:mod:`.prior` (the distributions), :mod:`.decoder` (the user's decoder as a function),
:mod:`.embed` (outputs back into the latent space), :mod:`.generate` (the
:class:`GeneratedSet` the ``generator_*`` checks read through ``ctx.generated``).
"""
from .decoder import Decoder, decode, load_decoder
from .generate import GeneratedSet, generate
from .prior import PRIORS, Prior, fit_prior

__all__ = ["PRIORS", "Decoder", "GeneratedSet", "Prior", "decode", "fit_prior", "generate",
           "load_decoder"]
