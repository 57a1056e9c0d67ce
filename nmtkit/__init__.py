"""nmtkit: recurrent encoder-decoder translation models with attention."""

__version__ = "0.1.0"
