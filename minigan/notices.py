"""Warnings meant for the person running minigan, not for a programmer reading a traceback.

A ``Notice`` (a checkpoint skipped because it does not load, image files that could not be
read) prints as one line, ``warning: <message>``, instead of Python's default form, which adds
the file, the line number and the source line of the code that warned. Every other warning keeps
the formatter that was in place when this module was imported. ``warnings`` filters and
``pytest.warns`` see Notices as the categories they also derive from (RuntimeWarning,
UserWarning), so catching them works as before.
"""
from __future__ import annotations

import warnings


class Notice(Warning):
    """Base of minigan's warnings for users: printed as ``warning: <message>``."""


_previous_format = warnings.formatwarning


def _format(message, category, filename, lineno, line=None):
    if isinstance(category, type) and issubclass(category, Notice):
        return f"warning: {message}\n"
    return _previous_format(message, category, filename, lineno, line)


warnings.formatwarning = _format
