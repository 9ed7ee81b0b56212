"""Value types several engines' contracts share, declared once.

The customer store's contract (`ecrm.customers.models`) declares them as its own (profile attribute names
and values); personalization's offers and models use them too, and read them here so that the
personalization API does not import (and build the classes of) the customer store's whole contract.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

AttributeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Scalar = str | int | FiniteFloat | bool | None
