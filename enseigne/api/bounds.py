"""Input text no longer than the column it fills: refused with a 422 naming the field, never cut.

The limit is read from the model field, so a migration that widens a column widens the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.db import models
from ninja import Field
from pydantic import StringConstraints


def max_length_of(model: type[models.Model], field_name: str) -> int:
    length = model._meta.get_field(field_name).max_length
    if length is None:
        raise ValueError(f"{model.__name__}.{field_name} has no max_length")
    return length


def fits(model: type[models.Model], field_name: str, default: Any = ..., **kwargs: Any) -> Any:
    """A schema field bounded like ``model.field_name`` (``name: str = fits(Campaign, "name", "")``)."""
    return Field(default, max_length=max_length_of(model, field_name), **kwargs)


def text_of(model: type[models.Model], field_name: str) -> Any:
    """A string type bounded like ``model.field_name``, for list items (``list[text_of(...)]``)."""
    return Annotated[str, StringConstraints(max_length=max_length_of(model, field_name))]
