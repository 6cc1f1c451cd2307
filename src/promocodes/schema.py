"""Imports every domain's models so the metadata is complete (migrations, checks)."""

from promocodes.apikeys import models as apikeys_models
from promocodes.audit import models as audit_models
from promocodes.codes import models as codes_models
from promocodes.customers import models as customers_models
from promocodes.messaging import models as messaging_models
from promocodes.models import Base
from promocodes.segments import models as segments_models
from promocodes.users import models as users_models

metadata = Base.metadata

__all__ = [
    "apikeys_models",
    "audit_models",
    "codes_models",
    "customers_models",
    "messaging_models",
    "metadata",
    "segments_models",
    "users_models",
]
