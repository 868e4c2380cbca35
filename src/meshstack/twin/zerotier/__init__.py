"""Twins of ZeroTier's controller (``controller``) and node command (``cli``)."""
