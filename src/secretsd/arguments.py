"""Argument types the commands share, checked once by argparse with the message users see."""

from __future__ import annotations

import argparse


def port(text: str) -> int:
    """A TCP port number, 0 for any free one."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0 picks a free one)")
    return number
