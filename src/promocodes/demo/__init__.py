"""The demo: a lived-in example in an empty database (``promocodes demo``)."""

from promocodes.demo.builder import build
from promocodes.demo.cli import command
from promocodes.demo.data import FLASH, KIDS, SHIPPING, SUMMER, WELCOME, DemoResult, NotEmpty

__all__ = [
    "FLASH",
    "KIDS",
    "SHIPPING",
    "SUMMER",
    "WELCOME",
    "DemoResult",
    "NotEmpty",
    "build",
    "command",
]
