"""Backward-compatible training methods as plug-ins: one file per method, each with its head, its versioned
options dataclass and its loss against the frozen old model, registered by name (``@register_method``).

==============  =======  ==========================================================================
method          head     loss for a batch (z = new embedding, o = old model's embedding)
==============  =======  ==========================================================================
independent     linear   CE(W z + b, y): ER / independent training, no compatibility term
bct             linear   CE + CE(W_old z + b_old, y): BCT influence (Shen et al., CVPR 2020)
dsimplex        simplex  0.1 CE(simplex z, K-1-y) + 0.9 InfoNCE(o, z): d-Simplex-HOC (Biondi et al.)
prototype       cosine   CE + CE(s cos(z, p_old), y): plain alignment to the old class prototypes
ndpp            cosine   CE + CE(s cos(z, p~), y), p~ = NDPP(p_old, p_new) refreshed every epoch
odpp            cosine   CE + CE(s cos(z, p~), y), p~ = ODPP(p_old, p_new) refreshed every epoch
cmcl            cosine   CE + ||psi(z) - o||^2 + CMCL(z, psi(z), y, o): psi (new -> old) trained jointly
==============  =======  ==========================================================================

A new method is a new file here (a :class:`Method` subclass, an options dataclass) plus its import below.
"""

from hotswap.training.methods import bct, cmcl, dsimplex, independent, ndpp, odpp, prototype  # noqa: F401  (registers)
from hotswap.training.methods.base import Method, MethodOptions
from hotswap.training.methods.registry import available_methods, get_method, register_method

METHODS = available_methods()

__all__ = ["METHODS", "Method", "MethodOptions", "available_methods", "get_method", "register_method"]
