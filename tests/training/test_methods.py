"""Training methods as plug-ins: the registry, versioned options, recipe keys and the chain's old-model rule."""

from __future__ import annotations

import pytest

from hotswap.training.classification import BCLConfig
from hotswap.training.methods import METHODS, Method, get_method, register_method
from hotswap.training.methods.cmcl import CMCLOptions
from hotswap.training.methods.ndpp import NDPPOptions


def test_every_method_is_registered_with_its_head():
    heads = {m: get_method(m).head for m in METHODS}
    assert heads == {"independent": "linear", "bct": "linear", "dsimplex": "simplex", "prototype": "cosine",
                     "ndpp": "cosine", "odpp": "cosine", "cmcl": "cosine"}
    with pytest.raises(ValueError, match="unknown method 'lwf'; choose one of"):
        get_method("lwf")


def test_options_are_read_from_a_dict_and_wrong_ones_are_named():
    cfg = BCLConfig(method="ndpp", options={"k": 5})
    assert cfg.options == NDPPOptions(k=5) and cfg.head_kind == "cosine"
    with pytest.raises(ValueError, match="bad options for method 'ndpp'"):
        BCLConfig(method="ndpp", options={"radius": 0.1})
    with pytest.raises(ValueError, match="takes NDPPOptions, not CMCLOptions"):
        BCLConfig(method="ndpp", options=CMCLOptions())


def test_recipe_holds_the_version_and_only_changed_options():
    plain, changed = BCLConfig(method="cmcl"), BCLConfig(method="cmcl", options={"learnable_embedding": True})
    assert plain.recipe()["options"] == {"version": 1}
    assert changed.recipe()["options"] == {"version": 1, "learnable_embedding": True}
    assert plain.as_dict()["options"]["temperature"] == 0.1
    assert {k: v for k, v in plain.recipe().items() if k != "options"} == \
        {k: v for k, v in changed.recipe().items() if k != "options"}


def test_the_old_model_at_a_replacement_follows_the_method():
    prev, init = object(), object()
    assert get_method("independent").old_model(False, prev, init) is None
    assert get_method("independent").old_model(True, prev, init) is None
    assert get_method("bct").old_model(True, prev, init) is prev
    assert get_method("dsimplex").old_model(True, prev, init) is init
    assert get_method("dsimplex").old_model(False, prev, init) is prev


def test_a_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="already taken"):
        @register_method("bct")
        class Other(Method):
            pass
