"""The ArgoCD config-management plugin (CMP v2): discover, read an Application's directory, generate.

I/O: reads the Application's files; :func:`live_namespaces` makes one read-only call to the API
server (list namespaces). Settings arrive typed from the command line, which alone reads ArgoCD's
environment. The plan comes from the one planner, like every other mode.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cfgsync import errors
from cfgsync._adapters import streams, yaml_input
from cfgsync._core import inventory, manifests, planner, vocabulary
from cfgsync._core.inventory import Document
from cfgsync._core.model import Namespace, Plan, frozen, is_source_kind

MARKER: Final = "cfgsync.yaml"
"""The file that marks an Application directory as cfgsync's, and declares its namespace inventory."""
_SYNC_RULE_LINE = re.compile(r"^kind:\s*[\"']?SyncRule[\"']?\s*$", re.MULTILINE)
_CFGSYNC_API_LINE = re.compile(r"^apiVersion:\s*[\"']?cfgsync\.io/", re.MULTILINE)
_PAGE: Final = 500  # namespaces per list call; a continue token fetches the rest


class Output(enum.Enum):
    """What ``generate`` prints."""

    ALL = "all"
    """The Application's objects and the copies, so that one Application owns both."""
    COPIES = "copies"
    """Only the copies (the sources are deployed some other way)."""


class NamespaceSource(enum.Enum):
    """Where the namespaces copies may go to come from (besides Namespace objects in the manifests)."""

    DECLARED = "declared"
    """The inventory declared in ``cfgsync.yaml``."""
    CLUSTER = "cluster"
    """The live namespaces, listed on the API server; the declared ones are added to them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppSettings:
    """Everything ``generate`` is told, from plugin parameters and ``ARGOCD_ENV_CFGSYNC_*``."""

    plan: planner.PlanSettings = planner.DEFAULT_SETTINGS
    """Cluster name, source namespace, exclusions."""
    output: Output = Output.ALL
    """All objects, or the copies only."""
    namespaces: NamespaceSource = NamespaceSource.DECLARED
    """Declared inventory, or live namespaces."""
    allow_empty: bool = False
    """Print nothing without failing (ArgoCD then prunes every object of the Application)."""
    app_namespace: str | None = None
    """``ARGOCD_APP_NAMESPACE``: where ArgoCD puts objects that name no namespace."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterAccess:
    """How to reach the API server for :func:`live_namespaces`."""

    in_cluster: tuple[str, str] | None = None
    """Host and port of the in-cluster API server (the pod's service account is used); None: kubeconfig."""
    kubeconfig: str | None = None
    """Kubeconfig file(s), ``:``-separated as in ``KUBECONFIG``; None: ``~/.kube/config``."""
    context: str | None = None
    """Kubeconfig context; None: its current context."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppInput:
    """An Application's directory, read."""

    items: tuple[streams.Item, ...]
    """Objects to emit, in file order (SyncRules and ``cfgsync.yaml`` are instructions, not objects)."""
    documents: tuple[Document, ...]
    """What the planner reads: every document, namespace filled in from ``ARGOCD_APP_NAMESPACE``."""
    declared: tuple[Namespace, ...] = ()
    """The namespaces ``cfgsync.yaml`` declares."""
    explicit: frozenset[str] = field(default_factory=frozenset)
    """Names of the Namespace objects among the manifests."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Generated:
    """What ``generate`` prints, and the plan behind it (for warnings)."""

    objects: Sequence[streams.Body]
    """The objects, in output order."""
    plan: Plan
    """The plan."""


def discover(root: Path) -> list[str]:
    """What the plugin's discover rule (``fileName: cfgsync.yaml`` in plugin.yaml) matches in ``root``.

    ArgoCD's plugin server applies that rule itself, without starting cfgsync; this mirrors it for
    ``cfgsync argocd discover``, so a user can check a checkout.
    """
    return [MARKER] if (root / MARKER).is_file() else []


def unmarked_rules(root: Path) -> list[str]:
    """YAML files under ``root`` holding a SyncRule while ``root`` has no marker (discovery misses them)."""
    if (root / MARKER).exists():
        return []
    found: list[str] = []
    try:
        paths = yaml_input.files_of([str(root)])
    except errors.ManifestError:
        return found  # only a hint: generate reports what is wrong with the files
    for path in paths:
        if path is None:
            continue
        try:
            text = yaml_input.read_text(path)
        except errors.ManifestError:
            continue  # only a hint: generate reports unreadable files properly
        if _SYNC_RULE_LINE.search(text) and _CFGSYNC_API_LINE.search(text):
            found.append(path.relative_to(root).as_posix())
    return found


def read_app(root: Path, *, app_namespace: str | None = None) -> AppInput:
    """Read the Application's manifests (as ``render`` does) and its ``cfgsync.yaml``."""
    marker = root / MARKER
    # Every file, the marker too, comes from one walk that refuses links out of the directory.
    walked = [p for p in yaml_input.files_of([str(root)]) if p is not None]
    files = [p for p in walked if p != marker]
    documents = yaml_input.read_documents([str(p) for p in files])
    items: list[streams.Item] = []
    planned: list[Document] = []
    explicit: set[str] = set()
    for doc in documents:
        body = _check_object(doc)
        planned_body = _with_namespace(body, app_namespace)
        planned.append(Document(body=planned_body, where=doc.where))
        if body.get("kind") == "Namespace" and body.get("apiVersion") == "v1":
            explicit.add(str(_metadata(body).get("name")))
        if not _is_sync_rule(body):
            items.append(streams.Item(body=body, ref=streams.config_ref(planned_body)))
    declared = _declared(marker) if marker in walked else ()
    return AppInput(
        items=tuple(items), documents=tuple(planned), declared=declared, explicit=frozenset(explicit)
    )


def _metadata(body: Mapping[str, object]) -> Mapping[str, object]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _check_object(doc: Document) -> Mapping[str, object]:
    body = doc.body
    name = _metadata(body).get("name")
    if not all(isinstance(v, str) and v for v in (body.get("apiVersion"), body.get("kind"), name)):
        raise errors.ManifestError(
            f"{doc.where}: not a Kubernetes object (apiVersion, kind and metadata.name are needed); ArgoCD "
            f"would refuse it too. Move non-manifest YAML out of the Application's directory"
        )
    return body


def _is_sync_rule(body: Mapping[str, object]) -> bool:
    return body.get("kind") == vocabulary.SYNC_RULE_KIND and str(body.get("apiVersion", "")).startswith(
        vocabulary.PREFIX
    )


def _with_namespace(body: Mapping[str, object], namespace: str | None) -> Mapping[str, object]:
    """``body`` as ArgoCD deploys it: a ConfigMap, Secret or SyncRule without namespace is put in one."""
    meta = _metadata(body)
    is_config = body.get("apiVersion") == "v1" and is_source_kind(body.get("kind"))
    cfgsync_reads = is_config or _is_sync_rule(body)
    if namespace is None or meta.get("namespace") not in (None, "") or not cfgsync_reads:
        return body
    return {**body, "metadata": {**meta, "namespace": namespace}}


def _declared(marker: Path) -> tuple[Namespace, ...]:
    declared: list[Namespace] = []
    for doc in yaml_input.read_documents([str(marker)]):
        if doc.body.get("kind") != "Namespace" or doc.body.get("apiVersion") != "v1":
            raise errors.ManifestError(
                f"{doc.where}: {MARKER} declares namespaces only (v1 Namespace objects or a NamespaceList, "
                f"e.g. from `kubectl get namespaces -o yaml`); move {doc.body.get('kind')} to another file"
            )
        declared.append(manifests.parse_namespace(doc.body, where=doc.where))
    return tuple(declared)


def generate(
    app: AppInput,
    settings: AppSettings,
    *,
    hooks: planner.CopyHooks,
    live: Iterable[Namespace] = (),
) -> Generated:
    """Plan with the Application's manifests and namespaces; the objects to print.

    Raises :class:`RuleError` listing every invalid rule, and :class:`CfgsyncError` when there would be
    nothing to print and ``allow_empty`` is not set.
    """
    found = inventory.build_inventory(app.documents)
    spaces = _namespaces(found.namespaces, app.explicit, app.declared, live)
    plan = planner.plan_copies(
        found.objects, spaces, found.objects, rules=found.rules, settings=settings.plan, hooks=hooks
    )
    if plan.problems:
        raise errors.RuleError("\n".join(str(p) for p in plan.problems))
    emitted = streams.carry_out(app.items, plan)
    objects = streams.objects(emitted, copies_only=settings.output is Output.COPIES)
    if not objects and not settings.allow_empty:
        what = "no copies" if settings.output is Output.COPIES else "no objects and no copies"
        raise errors.CfgsyncError(
            f"the Application's directory yields {what}, so the output would be empty, and ArgoCD would "
            f"prune every object the Application owns. Check the source path and the namespaces "
            f"({MARKER}); set the plugin parameter allow-empty=true if an empty output is what you want"
        )
    return Generated(objects=objects, plan=plan)


def _namespaces(
    found: Iterable[Namespace],
    explicit: frozenset[str],
    declared: Iterable[Namespace],
    live: Iterable[Namespace],
) -> list[Namespace]:
    """Every known namespace; labels from a Namespace object in the manifests, else declared, else live.

    A namespace the manifests only mention (objects in it) keeps the labels known from elsewhere.
    """
    merged = {ns.name: ns for ns in live}
    merged.update((ns.name, ns) for ns in declared)
    for ns in found:
        if ns.name in explicit or ns.name not in merged:
            merged[ns.name] = ns
    return sorted(merged.values(), key=lambda ns: ns.name)


def live_namespaces(access: ClusterAccess) -> tuple[Namespace, ...]:
    """List the cluster's namespaces: the only API call the plugin makes (RBAC: list namespaces)."""
    # Imported here: the client takes a while to import, and most runs never need it.
    import kubernetes
    import urllib3
    from kubernetes.config import incluster_config

    config: Any = kubernetes.config  # the client's config loaders carry no type hints
    in_cluster: Any = incluster_config
    configuration = kubernetes.client.Configuration()
    try:
        if access.in_cluster is not None:
            host, port = access.in_cluster
            in_cluster.InClusterConfigLoader(
                token_filename=in_cluster.SERVICE_TOKEN_FILENAME,
                cert_filename=in_cluster.SERVICE_CERT_FILENAME,
                environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
            ).load_and_set(configuration)
        else:
            config.load_kube_config(
                config_file=access.kubeconfig,
                context=access.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except config.ConfigException as exc:
        raise errors.ApplyError(
            f"cannot reach the cluster to list namespaces: {exc}; give the sidecar a service account token "
            f"(deploy/argocd/live-namespaces) or use the declared inventory (namespaces=declared)"
        ) from exc
    namespaces: list[Namespace] = []
    with kubernetes.client.ApiClient(configuration) as api:
        core = kubernetes.client.CoreV1Api(api)
        token: str | None = None
        try:
            while True:
                page = core.list_namespace(limit=_PAGE, _continue=token, _request_timeout=30)
                namespaces.extend(_namespace(item) for item in page.items)
                token = page.metadata._continue if page.metadata is not None else None
                if not token:
                    break
        except kubernetes.client.ApiException as exc:
            hint = (
                "; grant `list` on `namespaces` to the repo server's service account "
                "(deploy/argocd/live-namespaces)"
                if exc.status in {401, 403}
                else ""
            )
            raise errors.ApplyError(
                f"listing namespaces on {configuration.host} failed: {exc.status} {exc.reason}{hint}"
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise errors.ApplyError(f"listing namespaces on {configuration.host} failed: {exc}") from exc
    return tuple(sorted(namespaces, key=lambda ns: ns.name))


def _namespace(item: Any) -> Namespace:
    return Namespace(
        name=item.metadata.name,
        labels=frozen(item.metadata.labels or {}),
        terminating=getattr(item.status, "phase", None) == "Terminating",
        accept_from=manifests.accept_from(item.metadata.annotations or {}),
    )
