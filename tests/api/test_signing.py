"""Signed artifact links (pure): bound to run, artifact and expiry; the secret derived from
the API keys when not configured."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from api.errors import Unauthorized
from api.signing import UrlSigner, signing_secret

pytestmark = pytest.mark.unit

RUN = uuid.uuid4()


def test_a_link_opens_its_artifact_of_its_run_until_it_expires() -> None:
    now = [1000.0]
    signer = UrlSigner(b"secret", ttl_seconds=60, clock=lambda: now[0])
    expires, signature = signer.sign(RUN, "a" * 64)
    assert expires == 1060
    signer.verify(RUN, "a" * 64, expires, signature)
    with pytest.raises(Unauthorized, match="not valid"):
        signer.verify(uuid.uuid4(), "a" * 64, expires, signature)
    with pytest.raises(Unauthorized, match="not valid"):
        signer.verify(RUN, "b" * 64, expires, signature)
    with pytest.raises(Unauthorized, match="not valid"):
        signer.verify(RUN, "a" * 64, expires + 3600, signature)  # a stretched expiry
    with pytest.raises(Unauthorized, match="both"):
        signer.verify(RUN, "a" * 64, None, signature)
    now[0] = 1060.0
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(RUN, "a" * 64, expires, signature)


def test_the_secret_is_configured_or_derived_from_the_keys_in_any_order() -> None:
    one, two = SecretStr("key-one-0123456789"), SecretStr("key-two-0123456789")
    assert signing_secret(None, [one, two]) == signing_secret(None, [two, one])
    assert signing_secret(None, [one]) != signing_secret(None, [two])
    assert signing_secret(SecretStr("mine"), [one]) == b"mine"
    assert b"key-one" not in signing_secret(None, [one])
