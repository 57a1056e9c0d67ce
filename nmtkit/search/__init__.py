"""Decoding: greedy and batched beam search over the decoder step interface."""
