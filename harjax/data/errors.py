"""The one exception of the data layer, in a module of its own so that every other data module
(signal helpers, the builder base, splits, ...) can raise it without importing each other."""


class DataError(ValueError):
    """Any bad input. The message names what was expected, what was found, and the file/line."""
