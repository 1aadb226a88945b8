"""The one exception type of the data package."""


class DatasetError(ValueError):
    """A data set could not be found, fetched or read; the message names the file and the cause."""
