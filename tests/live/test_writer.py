"""The Writer without an API server: how each refusal is told apart, and what it closes."""

from __future__ import annotations

import pytest

from cfgsync._adapters.kube.connection import ApiError
from cfgsync._adapters.kube.writing import Writer
from cfgsync._core.model import Action, ActionKind, Copy, ObjectRef
from live.fakes import FakeApi

SOURCE = ObjectRef(kind="ConfigMap", namespace="demo", name="omni")
RBAC = (
    'configmaps is forbidden: User "system:serviceaccount:ops:cfgsync" cannot create resource '
    '"configmaps" in API group "" in the namespace "closed"'
)
WEBHOOK = 'admission webhook "deny.example.com" denied the request: copies of omni are not welcome'
POLICY = (
    "configmaps \"omni\" is forbidden: ValidatingAdmissionPolicy 'no-omni' with binding 'no-omni' "
    "denied request: not here"
)
QUOTA = 'configmaps "omni" is forbidden: exceeded quota: small, requested: count/configmaps=1'


def create(namespace: str, name: str = "omni") -> Action:
    ref = ObjectRef(kind="ConfigMap", namespace=namespace, name=name)
    copy = Copy(ref=ref, source=SOURCE, rule="test")
    return Action(kind=ActionKind.CREATE, ref=ref, source=SOURCE, desired=copy, reason="new")


def refuse(status: int, message: str, reason: str = "Forbidden") -> ApiError:
    return ApiError(f"POST: {status} {reason}: {message}", status=status, reason=reason, detail=message)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def writer(api: FakeApi) -> Writer:
    return Writer(api.as_kube(), workers=1, forbidden_for=600)


def test_an_rbac_refusal_closes_the_namespace_for_that_kind(api: FakeApi, writer: Writer) -> None:
    api.fail[("POST", "/api/v1/namespaces/closed/")] = refuse(403, RBAC)

    first = writer.carry_out(create("closed"))
    second = writer.carry_out(create("closed", "other"))

    assert first.forbidden
    assert second.forbidden
    assert not first.retriable
    assert "grant cfgsync's service account this verb in namespace closed" in first.message
    assert len(api.writes("POST")) == 1  # the second was not even asked
    writer.close()


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (403, WEBHOOK, "Forbidden"),
        (403, POLICY, "Forbidden"),
        (403, QUOTA, "Forbidden"),
        (422, POLICY, "Invalid"),
    ],
)
def test_an_admission_refusal_affects_that_copy_only(
    api: FakeApi, writer: Writer, status: int, message: str, reason: str
) -> None:
    api.fail[("POST", "/api/v1/namespaces/guarded/configmaps")] = refuse(status, message, reason)

    refused = writer.carry_out(create("guarded"))
    api.fail.clear()
    other = writer.carry_out(create("guarded", "other"))

    assert refused.rejected
    assert not refused.forbidden
    assert not refused.retriable
    assert message in refused.message
    assert "refused by admission" in refused.message
    assert "RBAC" not in refused.message
    assert other.ok  # the namespace stays open
    writer.close()


@pytest.mark.parametrize(("status", "retriable"), [(409, True), (500, True), (0, True), (404, False)])
def test_which_failures_are_tried_again_after_a_back_off(
    api: FakeApi, writer: Writer, status: int, retriable: bool
) -> None:
    api.fail[("POST", "/api/v1/namespaces/x/")] = ApiError("nope", status=status)

    assert writer.carry_out(create("x")).retriable is retriable
    writer.close()


def test_nothing_is_sent_without_the_lease(api: FakeApi, writer: Writer) -> None:
    api.fence = lambda: False

    outcome = writer.carry_out(create("x"))

    assert not outcome.ok
    assert outcome.retriable
    assert api.writes() == []
    writer.close()
