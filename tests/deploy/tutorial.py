"""kubed's config-syncer tutorial, walked on a real API server while a cfgsync controller runs.

I/O: requests to the test control plane. Shared by the tests that run the controller as the chart
installs it: from the Python environment (test_install.py) and from the image pulled back from a private
registry (test_airgapped_install.py).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from live.conftest import NamespaceFactory
from live.helpers import ORIGIN_LABELS, SYNC, cm_data, configmap, read_cm, read_secret, secret, wait_for


def _origin(copy: Any) -> tuple[str, ...]:
    return tuple(copy.metadata.labels.get(label, "") for label in ORIGIN_LABELS)


def kubed_tutorial(
    core: Any, *, demo: str, other: str, taken: str, make_namespace: NamespaceFactory, gone_grace: float
) -> None:
    """kubed's config-syncer walk-through: sync everywhere, follow changes, narrow by label, remove.

    ``gone_grace``: the controller's ``--source-gone-grace`` in seconds; a deleted source's copies go
    only after it."""
    core.create_namespaced_config_map(demo, configmap("omni", {"you": "only", "live": "once"}))
    core.patch_namespaced_config_map("omni", demo, {"metadata": {"annotations": {SYNC: ""}}})

    for namespace in (other, "default"):
        wait_for(functools.partial(cm_data, core, namespace, "omni"), what=f"a copy in {namespace}")
        assert cm_data(core, namespace, "omni") == {"you": "only", "live": "once"}
    copy = read_cm(core, other, "omni")
    assert _origin(copy) == ("omni", demo, "unicorn")  # the chart's default cluster name, as kubed's
    origin = json.loads(copy.metadata.annotations["kubed.appscode.com/origin"])
    assert (origin["kind"], origin["namespace"], origin["name"]) == ("ConfigMap", demo, "omni")

    def conflict_reported() -> bool:
        events = core.list_namespaced_event(demo, field_selector="involvedObject.name=omni").items
        return any(e.type == "Warning" and taken in (e.message or "") for e in events)

    wait_for(conflict_reported, what="a Warning event on the source about the foreign object")
    assert cm_data(core, taken, "omni") == {"owner": "someone else"}  # never overwritten

    late = make_namespace("late")
    wait_for(lambda: cm_data(core, late, "omni") is not None, what="a copy in a namespace created later")

    core.patch_namespaced_config_map("omni", demo, {"data": {"live": "twice"}})
    wait_for(lambda: (cm_data(core, other, "omni") or {}).get("live") == "twice", what="the update to follow")

    core.patch_namespaced_config_map("omni", demo, {"metadata": {"annotations": {SYNC: "app=kubed"}}})
    wait_for(lambda: read_cm(core, other, "omni") is None, what="copies outside the selector to go")
    wait_for(lambda: read_cm(core, "default", "omni") is None, what="the copy in default to go")
    core.patch_namespace(other, {"metadata": {"labels": {"app": "kubed"}}})
    wait_for(lambda: cm_data(core, other, "omni") is not None, what="a copy in the newly labelled namespace")

    core.patch_namespaced_config_map("omni", demo, {"metadata": {"annotations": {SYNC: None}}})
    wait_for(lambda: read_cm(core, other, "omni") is None, what="copies to go with the annotation")

    core.create_namespaced_secret(demo, secret("registry", {"token": "s3cret"}, annotations={SYNC: ""}))
    wait_for(lambda: read_secret(core, other, "registry") is not None, what="the Secret copy")
    core.delete_namespaced_secret("registry", demo)
    wait_for(
        lambda: read_secret(core, other, "registry") is None,
        timeout=gone_grace + 30,
        what="the Secret copy to go with its source",
    )
