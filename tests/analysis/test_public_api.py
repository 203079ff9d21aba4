"""The public surface: ``analysis.__all__`` is complete and importable."""

from __future__ import annotations

import inspect

import analysis


def test_all_names_are_importable():
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None, name


def test_all_lists_every_public_name():
    public = {
        name
        for name, value in vars(analysis).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(analysis.__all__)


def test_errors_form_one_tree():
    for name in analysis.__all__:
        value = getattr(analysis, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, analysis.AnalysisError)
