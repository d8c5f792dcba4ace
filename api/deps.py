"""Route dependencies: the lifespan's services, and request-derived values."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.auth import authenticate
from api.services import Services


def get_services(request: Request) -> Services:
    return request.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
Principal = Annotated[str, Depends(authenticate)]
