"""Typed errors of the spatial core, each with the message a user reads.

Example
-------
>>> str(InputError("not a whole number: 'abc'", file="households.geojson", index=3, feature_id="H4", field="persons"))
"households.geojson: feature 3 (id=H4), field 'persons': not a whole number: 'abc'"
"""

from __future__ import annotations


class GridcoverError(Exception):
    """Base of every error gridcover reports to a user without a traceback."""


class InputError(GridcoverError):
    """Bad input data: names the file, the feature (index and id) and the field."""

    def __init__(self, message: str, *, file: str | None = None, index: int | None = None,
                 feature_id: object = None, field: str | None = None) -> None:
        self.message = message
        self.file = file
        self.index = index
        self.feature_id = feature_id
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.index is not None:
            feature = f"feature {self.index}"
            if self.feature_id is not None and str(self.feature_id) not in ("", "nan", "None"):
                feature += f" (id={self.feature_id})"
            where.append(feature)
        if self.field:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where[1:])
        if where:
            head = where[0] if not prefix else f"{where[0]}: {prefix}"
            return f"{head}: {self.message}"
        return self.message


class ConfigError(GridcoverError):
    """A bad configuration file or command-line option."""


class ParameterError(GridcoverError):
    """A bad parameter of a request (query parameter or path segment): names the parameter.

    >>> str(ParameterError("bbox", "minx is not a finite number: 'nan'"))
    "parameter bbox: minx is not a finite number: 'nan'"
    """

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.message = message
        super().__init__(f"parameter {parameter}: {message}")


class NotFoundError(GridcoverError):
    """Something a request names (a collection, a feature, a tile, a file) does not exist."""


class KeyRequiredError(GridcoverError):
    """A request that needs an API key came without one, or with a key that is not configured."""


class ForbiddenError(GridcoverError):
    """The caller's key does not allow what it asked for."""
