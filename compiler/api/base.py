"""Base classes of the input models.

Istio kinds forbid unknown fields (as Istio's CRD schemas do), Kubernetes kinds ignore what meshward does not model
(real manifests carry many fields we never read). Attribute names are Istio's proto field names (snake_case); the
YAML keys are their camelCase aliases.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

UINT32_MAX = 4_294_967_295
INT32_MIN = -2_147_483_648
INT32_MAX = 2_147_483_647

UInt32 = Annotated[int, Field(ge=0, le=UINT32_MAX)]
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Duration = str  # kept as text; checked by compiler.validate with compiler.units


class ApiModel(BaseModel):
    """An Istio message: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel)


class KubeModel(BaseModel):
    """A Kubernetes object part: fields meshward does not model are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, alias_generator=to_camel)
