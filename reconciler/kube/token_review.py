"""Kubernetes service-account tokens for the CA in cluster mode, checked with a TokenReview as istiod does
(security/pkg/server/ca/authenticate/kubeauth/kube_jwt.go): the API server says whether the token is valid, for
which audiences, and whose it is; the CA then signs only for that service account. Needs `create` on
`tokenreviews.authentication.k8s.io` (the `system:auth-delegator` ClusterRole grants it)."""

from __future__ import annotations

from collections.abc import Sequence

import kubernetes.client
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from reconciler.identity import tokens

AUDIENCES = ("istio-ca",)  # the audience Istio's agents ask their tokens for
TIMEOUT = 5.0  # seconds: a CA call waits on it
_PREFIX = "system:serviceaccount:"


class TokenReviewer:
    """A token to the service account the API server says it belongs to, or tokens.TokenError with why not."""

    def __init__(self, api_client: kubernetes.client.ApiClient, audiences: Sequence[str] = AUDIENCES) -> None:
        self.api = kubernetes.client.AuthenticationV1Api(api_client)
        self.audiences = tuple(audiences)

    def __call__(self, token: str) -> tokens.Caller:
        review = kubernetes.client.V1TokenReview(
            spec=kubernetes.client.V1TokenReviewSpec(token=token, audiences=list(self.audiences)))
        try:
            status = self.api.create_token_review(review, _request_timeout=TIMEOUT).status
        except ApiException as err:
            raise tokens.TokenError(f"the TokenReview failed: {err.status} {err.reason}") from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise tokens.TokenError(f"cannot reach the Kubernetes API for a TokenReview: {err}") from err
        if status is None or not status.authenticated:
            raise tokens.TokenError(f"Kubernetes did not authenticate the token: "
                                    f"{(status.error if status else None) or 'no reason given'}")
        if not set(status.audiences or ()) & set(self.audiences):
            raise tokens.TokenError(f"the token is not for the CA's audience {', '.join(self.audiences)}")
        return _caller((status.user.username if status.user else None) or "")


def _caller(username: str) -> tokens.Caller:
    namespace, _, account = username.removeprefix(_PREFIX).partition(":")
    if not username.startswith(_PREFIX) or not namespace or not account:
        raise tokens.TokenError(f"the token is not a service account's (user {username!r})")
    try:
        return tokens.Caller(namespace, account)
    except ValueError as err:
        raise tokens.TokenError(str(err)) from err
