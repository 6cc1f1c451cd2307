"""Imports every domain's models so the metadata is complete (migrations, checks)."""

from promocodes.codes import models as codes_models
from promocodes.customers import models as customers_models
from promocodes.models import Base

metadata = Base.metadata

__all__ = ["codes_models", "customers_models", "metadata"]
