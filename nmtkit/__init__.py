"""nmtkit: recurrent encoder-decoder translation models with attention.

The public Python API is `nmtkit.Translator` (see `nmtkit.translate`), imported on first use
so that `import nmtkit` (and the command line's start) stays free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["DecodeOptions", "Translation", "Translator", "__version__"]

if TYPE_CHECKING:
    from nmtkit.translate import DecodeOptions, Translation, Translator


def __getattr__(name: str) -> Any:
    if name in ("DecodeOptions", "Translation", "Translator"):
        from nmtkit import translate

        return getattr(translate, name)
    raise AttributeError(f"module 'nmtkit' has no attribute {name!r}")
