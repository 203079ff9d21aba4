"""Fixed phrases per language (from ``templates/phrases.yaml``) and digit localisation.

Persian text lives in data files, not in code; this module only reads them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from questionnaires.schema import LANGUAGES

_PERSIAN_DIGITS = str.maketrans("0123456789", "".join(chr(0x06F0 + d) for d in range(10)))


def check_lang(lang: str) -> None:
    """Refuse a language code we have no texts for."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not supported; expected one of {LANGUAGES}")


def localise_digits(text: str, lang: str) -> str:
    """Persian digits for ``fa`` (how numbers are read there), Latin digits otherwise."""
    return text.translate(_PERSIAN_DIGITS) if lang == "fa" else text


@cache
def phrases(lang: str) -> dict[str, str]:
    """The fixed phrases for one language (a copy-safe dict of str -> str)."""
    check_lang(lang)
    source = resources.files("questionnaires").joinpath("templates/phrases.yaml")
    table = yaml.safe_load(source.read_text("utf-8"))
    return {str(key): str(value) for key, value in table[lang].items()}
