"""The data package's exception and warning types."""
from ..notices import Notice


class DatasetError(ValueError):
    """A data set could not be found, fetched or read; the message names the file and the cause."""


class DataWarning(Notice, UserWarning):
    """Something about the data the user should know (image files skipped as unreadable),
    printed as one line, ``warning: <message>``."""
