"""Local identity tokens (`meshward token`): what an agent outside Kubernetes shows the CA instead of a service
account token. A JWT (RFC 7519) signed with EdDSA by an Ed25519 key kept in the CA directory (`token-key.pem`,
0600), carrying the namespace, service account and expiry; only the CA, which holds the key, can mint or verify one.

The claims follow a Kubernetes service account token's where they overlap (`sub` is
`system:serviceaccount:NS:SA`), so the CA treats both kinds alike once verified.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from reconciler.identity import private_files, spiffe

TOKEN_KEY = "token-key.pem"
ISSUER = "meshward"
AUDIENCE = "istio-ca"  # Istio's default audience for tokens sent to its CA
MAX_TOKEN_BYTES = 16 * 1024


class TokenError(ValueError):
    """A token the CA does not accept; the message is the reason."""


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who a verified token speaks for."""
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        spiffe.check_names(self.namespace, self.service_account)


def load_or_create_key(directory: Path) -> ed25519.Ed25519PrivateKey:
    """The CA directory's token key, made on first use (by `meshward token` or `meshward serve`, whichever is first)."""
    path = directory / TOKEN_KEY
    if not path.exists():
        private_files.ensure_dir(directory)
        try:
            private_files.create(path, ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        except FileExistsError:
            pass  # another process made it first: use theirs
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError(f"{path} is not an Ed25519 private key")
    return key


def mint(key: ed25519.Ed25519PrivateKey, caller: Caller, *, ttl: datetime.timedelta,
         now: datetime.datetime | None = None) -> str:
    issued = now or datetime.datetime.now(datetime.UTC)
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "iat": issued, "exp": issued + ttl,
        "sub": f"system:serviceaccount:{caller.namespace}:{caller.service_account}",
        "ns": caller.namespace, "sa": caller.service_account,
    }
    return jwt.encode(claims, key, algorithm="EdDSA")


def verify(public_key: ed25519.Ed25519PublicKey, token: str) -> Caller:
    """The caller a token speaks for; TokenError with the reason for an expired, forged or malformed one."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError(f"the token is {len(token)} bytes, over the {MAX_TOKEN_BYTES // 1024} KiB limit")
    try:
        claims = jwt.decode(token, public_key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "ns", "sa"]})
    except jwt.ExpiredSignatureError as err:
        raise TokenError("the token has expired") from err
    except jwt.InvalidSignatureError as err:
        raise TokenError("the token's signature does not verify: forged, or minted for another CA") from err
    except jwt.DecodeError as err:
        raise TokenError(f"the token is malformed: {err}") from err
    except jwt.InvalidTokenError as err:
        raise TokenError(f"the token is not valid: {err}") from err
    return _caller(claims)


def _caller(claims: dict[str, object]) -> Caller:
    namespace, account = claims["ns"], claims["sa"]
    if not isinstance(namespace, str) or not isinstance(account, str) \
            or claims["sub"] != f"system:serviceaccount:{namespace}:{account}":
        raise TokenError("the token's subject does not match its namespace and service account")
    try:
        return Caller(namespace, account)
    except ValueError as err:
        raise TokenError(f"the token names no valid service account: {err}") from err


def unverified_caller(token: str) -> Caller:
    """Whom a token claims to speak for, read without verifying it: the agent uses it to know which identity to ask
    for; the CA, which verifies, decides whether it gets it."""
    try:
        return _caller(jwt.decode(token, options={"verify_signature": False}))
    except (jwt.InvalidTokenError, KeyError) as err:
        raise TokenError(f"the token is malformed: {err}") from err


def is_local(token: str) -> bool:
    """Whether a token claims to be one of ours (`meshward token`) rather than, say, a service account's: it picks
    the verifier. Anything that does not decode counts as ours, so the local verifier names what is wrong with it."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss") == ISSUER
    except jwt.InvalidTokenError:
        return True
