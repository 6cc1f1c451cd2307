"""Promocodes: the promo code module of a marketing platform."""

__version__ = "0.1.0"
