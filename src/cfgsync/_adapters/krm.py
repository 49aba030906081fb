"""The KRM function: a ``ResourceList`` in, the same items plus the copies out (kustomize, kpt).

Does no I/O itself: it parses and writes the text the command line hands it. The input items go out
as the very text they came as (:mod:`cfgsync._adapters.krm_text`): quoting, comments, and the
bookkeeping annotations kustomize and kpt put on them (``config.k8s.io/id``,
``internal.config.kubernetes.io/*``) by which they recognise the items they sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cfgsync import errors
from cfgsync._adapters import krm_text, streams, tree
from cfgsync._core import (
    diagnostics,
    inventory,
    patterns,
    planner,
    policy,
    syncrule,
    validation,
    vocabularies,
    vocabulary,
)
from cfgsync._core.inventory import Document
from cfgsync._core.model import ObjectRef, Plan

API_GROUP: Final = "config.kubernetes.io"
"""The group of ``ResourceList``; ``v1`` and ``v1beta1`` are read, and answered in the same version."""
API_VERSIONS: Final = (f"{API_GROUP}/v1", f"{API_GROUP}/v1beta1")
"""The ResourceList versions understood."""
SETTINGS_KIND: Final = "SyncSettings"
"""Kind (``cfgsync.io/v1alpha1``) of the functionConfig that carries settings and extra SyncRules."""
COPIES_DIR: Final = "copies"
"""Copies get ``config.kubernetes.io/path`` ``copies/<namespace>/<kind>-<name>.yaml``."""

PATH: Final = "config.kubernetes.io/path"
INDEX: Final = "config.kubernetes.io/index"
INTERNAL_PATH: Final = "internal.config.kubernetes.io/path"
INTERNAL_INDEX: Final = "internal.config.kubernetes.io/index"
_BOOKKEEPING_PREFIXES: Final = (
    "internal.config.kubernetes.io/",
    "config.kubernetes.io/",
    "kustomize.config.k8s.io/",
)
_BOOKKEEPING_KEYS: Final = frozenset({"config.k8s.io/id"})
_POLICY_FIELDS: Final = {
    "allowSystemNamespaces": "allow-system-namespaces",
    "denySourceTypes": "deny-source-types",
    "allowSourcesFrom": "allow-sources-from",
    "allowSourcesFromSelector": "allow-sources-from-selector",
    "requireConsent": "require-consent",
    "stripMetadata": "strip-metadata",
}
"""The policy's settings: SyncSettings spec field -> ConfigMap data key (docs/security.md)."""
_READING_FIELDS: Final = {
    "disableVocabularies": "disable-vocabularies",
    "excludeNamespacesRegex": "exclude-namespaces-regex",
}
"""How annotations are read (docs/annotations.md): SyncSettings spec field -> ConfigMap data key."""
_SPEC_FIELDS: Final = frozenset(
    {"clusterName", "sourceNamespace", "excludeNamespaces", "rules", *_POLICY_FIELDS, *_READING_FIELDS}
)
_INDEX_DIGITS: Final = 18  # an index kustomize writes fits in 64 bits
_CONFIGMAP_KEYS: Final = frozenset(
    {
        "cluster-name",
        "source-namespace",
        "exclude-namespaces",
        *_POLICY_FIELDS.values(),
        *_READING_FIELDS.values(),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """One entry of the ResourceList's ``results``."""

    severity: str
    """``error``, ``warning`` or ``info``."""
    message: str
    """What is wrong and how to fix it; never a Secret value."""
    ref: ObjectRef | None = None
    """The object it is about, when known."""
    file: tuple[str, int] | None = None
    """The item's ``config.kubernetes.io/path`` and index, when known."""
    api_version: str = "v1"
    """The apiVersion of ``ref`` (``cfgsync.io/v1alpha1`` for a SyncRule)."""
    field: str | None = None
    """The field path within the object the result is about (``spec.keys.rename``), when known."""

    def to_data(self) -> dict[str, object]:
        """The result as ResourceList data."""
        data: dict[str, object] = {"message": self.message, "severity": self.severity}
        if self.ref is not None:
            data["resourceRef"] = {
                "apiVersion": self.api_version,
                "kind": self.ref.kind,
                "name": self.ref.name,
                "namespace": self.ref.namespace,
            }
        if self.field is not None:
            data["field"] = {"path": self.field}
        if self.file is not None:
            data["file"] = {"path": self.file[0], "index": self.file[1]}
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionOutput:
    """What the function answers."""

    text: str
    """The ResourceList to write to stdout."""
    failed: bool
    """True when a result is an error: the function must exit non-zero."""
    copies: int = 0
    """How many copies were added."""
    results: tuple[Result, ...] = field(default=())
    """The results, also in ``text``."""


Located = tuple[Document, ObjectRef | None, tuple[str, int] | None]
"""An item as the planner reads it, its identity (ConfigMaps and Secrets) and its file."""


def run_function(text: str, *, hooks: planner.CopyHooks) -> FunctionOutput:
    """Run the function on a ResourceList; raise :class:`ManifestError` when the input is no ResourceList."""
    parsed = krm_text.parse(text)
    api_version, kind = parsed.values.get("apiVersion"), parsed.values.get("kind")
    if kind != "ResourceList" or api_version not in API_VERSIONS:
        raise errors.ManifestError(
            f"stdin holds {api_version}/{kind}, not a ResourceList ({' or '.join(API_VERSIONS)}); run "
            f"cfgsync krm as a kustomize or kpt function, which sends one"
        )
    settings, rule_docs = read_function_config(parsed.values.get("functionConfig"))
    located = [_locate(index, item) for index, item in enumerate(parsed.items)]
    documents = [doc for doc, _, _ in located] + rule_docs
    rule_refs = _rule_refs(documents)
    try:
        found = inventory.build_inventory(documents)
    except errors.ManifestError as exc:
        results = _blame([*located, *((doc, None, None) for doc in rule_docs)], exc)
        return _answer(parsed, parsed.items, results, copies=())
    plan = planner.plan_copies(
        found.objects, found.namespaces, found.objects, rules=found.rules, settings=settings, hooks=hooks
    )
    results = _plan_results(plan, {ref: file for _, ref, file in located if ref is not None}, rule_refs)
    if any(r.severity == "error" for r in results):
        return _answer(parsed, parsed.items, results, copies=())
    # Each item as it came, bookkeeping included: an item the plan rewrites (a pulled target, a stale
    # copy) keeps kustomize's and kpt's marks, by which they recognise the item they sent.
    stream = [
        streams.Item(body=doc.body if item.body is None else item.body, ref=ref)  # checked by _locate
        for (doc, ref, _), item in zip(located, parsed.items, strict=True)
    ]
    by_identity = {id(entry): item for entry, item in zip(stream, parsed.items, strict=True)}
    emitted = streams.carry_out(stream, plan)
    copies = [_with_bookkeeping(manifest, original) for manifest, original in emitted.copies]
    kept = [by_identity[id(entry)] for entry in emitted.kept]
    return _answer(parsed, kept, results, copies=copies)


def _as_body(value: object, where: str) -> dict[str, Any]:
    """An item's constructed YAML, which must be a mapping (a tag such as ``!!set`` makes it another
    value). Its keys and values are left as they are: the core reads them as in every mode."""
    if not isinstance(value, dict):
        raise errors.ManifestError(f"{where}: not an object; every item of a ResourceList must be one")
    return value


def read_function_config(config: object) -> tuple[planner.PlanSettings, list[Document]]:
    """Settings and extra SyncRule documents from a ``SyncSettings`` or ``ConfigMap`` functionConfig."""
    if config is None or config == {}:
        return planner.DEFAULT_SETTINGS, []
    where = "functionConfig"
    if not isinstance(config, Mapping):
        raise errors.ManifestError(f"{where}: must be an object")
    kind, api_version = config.get("kind"), config.get("apiVersion")
    if kind == "ConfigMap" and api_version == "v1":
        data = _configmap_data(config.get("data"), where)
        spelled = validation.SettingNames(
            cluster_name=f"{where} data.cluster-name",
            source_namespace=f"{where} data.source-namespace",
            excluded_namespaces=f"{where} data.exclude-namespaces",
        )
        configured = _with_policy(
            _settings(
                data.get("cluster-name"),
                data.get("source-namespace"),
                _comma_list(data.get("exclude-namespaces", "")),
                where=f"{where} data",
                spelled=spelled,
            ),
            _configmap_policy(data, f"{where} data"),
            where=f"{where} data",
        )
        listed = {name: _comma_list(data.get(key) or "") for name, key in _READING_FIELDS.items()}
        return _with_reading(configured, listed, where=f"{where} data"), []
    if kind == SETTINGS_KIND and api_version == vocabulary.SYNC_RULE_API_VERSION:
        spec = config.get("spec") or {}
        if not isinstance(spec, Mapping):
            raise errors.ManifestError(f"{where}: spec must be a mapping")
        _only(spec, _SPEC_FIELDS, f"{where} spec")
        exclude = spec.get("excludeNamespaces") or []
        if not isinstance(exclude, list) or not all(isinstance(p, str) for p in exclude):
            raise errors.ManifestError(f"{where}: spec.excludeNamespaces must be a list of strings")
        rules = spec.get("rules") or []
        if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
            raise errors.ManifestError(f"{where}: spec.rules must be a list of SyncRule objects")
        docs = [Document(body=r, where=f"{where} spec.rules[{i}]") for i, r in enumerate(rules)]
        for doc in docs:
            typed = (doc.body.get("apiVersion"), doc.body.get("kind"))
            if typed != (vocabulary.SYNC_RULE_API_VERSION, vocabulary.SYNC_RULE_KIND):
                # A rule under another apiVersion would otherwise pass through the inventory unread.
                raise errors.ManifestError(
                    f"{doc.where}: must be a {vocabulary.SYNC_RULE_API_VERSION} {vocabulary.SYNC_RULE_KIND}"
                )
        spelled = validation.SettingNames(
            cluster_name=f"{where} spec.clusterName",
            source_namespace=f"{where} spec.sourceNamespace",
            excluded_namespaces=f"{where} spec.excludeNamespaces",
        )
        settings = _settings(
            spec.get("clusterName"), spec.get("sourceNamespace"), exclude, where=where, spelled=spelled
        )
        reading: dict[str, list[str]] = {}
        for name in _READING_FIELDS:
            value: object = spec.get(name) or []
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise errors.ManifestError(f"{where}: spec.{name} must be a list of strings")
            reading[name] = value
        configured = _with_policy(settings, _spec_policy(spec, where), where=f"{where} spec")
        return _with_reading(configured, reading, where=f"{where} spec"), docs
    raise errors.ManifestError(
        f"{where}: {api_version}/{kind} is not understood; use a {vocabulary.SYNC_RULE_API_VERSION} "
        f"{SETTINGS_KIND} (spec: {', '.join(sorted(_SPEC_FIELDS))}) or a v1 ConfigMap "
        f"(data: {', '.join(sorted(_CONFIGMAP_KEYS))})"
    )


def _configmap_data(data: object, where: str) -> dict[str, str]:
    """A ConfigMap functionConfig's data: known keys, string values (a list is written "a,b")."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise errors.ManifestError(f"{where}: data must be a mapping")
    _only(data, _CONFIGMAP_KEYS, f"{where} data")
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise errors.ManifestError(
                f"{where} data.{key}: must be a string, got {type(value).__name__}; a ConfigMap's data "
                f'holds strings (a list is written "a,b", a flag "true")'
            )
    # A null value is an empty string, as the API server stores it.
    return {str(key): value or "" for key, value in data.items()}


def _only(mapping: Mapping[object, object], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in set(mapping) - allowed)
    if unknown:
        raise errors.ManifestError(
            f"{where}: unknown setting {unknown[0]!r}; known settings: {', '.join(sorted(allowed))}"
        )


def _settings(
    cluster: object,
    source: object,
    exclude: Sequence[str],
    *,
    where: str,
    spelled: validation.SettingNames,
) -> planner.PlanSettings:
    for name, value in (("cluster name", cluster), ("source namespace", source)):
        if value is not None and not isinstance(value, str):
            raise errors.ManifestError(f"{where}: the {name} must be a string, got {type(value).__name__}")
    settings = planner.PlanSettings(
        cluster_name=str(cluster or ""),
        source_namespace=str(source) if source else None,
        excluded_namespaces=tuple(exclude),
    )
    validation.check_settings(settings, spelled)
    return settings


_POLICY_LISTS: Final = ("denySourceTypes", "allowSourcesFrom", "stripMetadata")
_POLICY_FLAGS: Final = ("allowSystemNamespaces", "requireConsent")


def _configmap_policy(data: Mapping[str, object], where: str) -> dict[str, Any]:
    """The policy settings of a ConfigMap functionConfig: comma lists and "true"/"false"."""
    values: dict[str, Any] = {name: data.get(key) for name, key in _POLICY_FIELDS.items()}
    for name in _POLICY_LISTS:
        values[name] = _comma_list(values[name] or "")
    for name in _POLICY_FLAGS:
        values[name] = _flag(values[name], f"{where} {_POLICY_FIELDS[name]}")
    return values


def _spec_policy(spec: Mapping[str, object], where: str) -> dict[str, Any]:
    """The policy settings of a SyncSettings functionConfig: lists and booleans."""
    values: dict[str, Any] = {name: spec.get(name) for name in _POLICY_FIELDS}
    for name in _POLICY_LISTS:
        value = values[name] or []
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise errors.ManifestError(f"{where}: spec.{name} must be a list of strings")
        values[name] = value
    for name in _POLICY_FLAGS:
        if values[name] is not None and not isinstance(values[name], bool):
            raise errors.ManifestError(f"{where}: spec.{name} must be true or false")
    return values


def _comma_list(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _flag(value: str | None, where: str) -> bool:
    if not value or value == "false":
        return False
    if value == "true":
        return True
    raise errors.ManifestError(f'{where}: must be "true" or "false", got {value!r}')


def _with_policy(
    settings: planner.PlanSettings, values: Mapping[str, Any], *, where: str
) -> planner.PlanSettings:
    selector = values["allowSourcesFromSelector"]
    if selector is not None and not isinstance(selector, str):
        raise errors.ManifestError(f"{where}: allowSourcesFromSelector must be a string")
    try:
        built = policy.build_policy(
            allow_system_namespaces=bool(values["allowSystemNamespaces"]),
            denied_source_types=tuple(values["denySourceTypes"]),
            sources_from=tuple(values["allowSourcesFrom"]),
            sources_from_selector=selector or None,
            require_consent=bool(values["requireConsent"]),
            strip_metadata=tuple(values["stripMetadata"]),
            where=where,
        )
    except errors.RuleError as exc:
        raise errors.ManifestError(str(exc)) from exc
    return dataclasses.replace(settings, policy=built)


def _with_reading(
    settings: planner.PlanSettings, values: Mapping[str, list[str]], *, where: str
) -> planner.PlanSettings:
    """``settings`` with the vocabularies switched off and the exclusion regexes."""
    try:
        disabled = vocabularies.check_disabled(
            values["disableVocabularies"], where=f"{where} disableVocabularies"
        )
        regexes = tuple(
            entry
            for value in values["excludeNamespacesRegex"]
            for entry in patterns.compile_list(
                value, patterns.Matching.ANYWHERE, where=f"{where} excludeNamespacesRegex"
            )
        )
    except errors.RuleError as exc:
        raise errors.ManifestError(str(exc)) from exc
    return dataclasses.replace(settings, disabled_vocabularies=disabled, excluded_namespace_regexes=regexes)


def _item_file(body: Mapping[str, Any]) -> tuple[str, int] | None:
    meta = body.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return None
    path = annotations.get(INTERNAL_PATH) or annotations.get(PATH)
    if not path:
        return None
    index = str(annotations.get(INTERNAL_INDEX) or annotations.get(INDEX) or 0)
    # isdigit() alone also takes "²" and digits of other scripts, which int() refuses.
    readable = index.isascii() and index.isdigit() and len(index) <= _INDEX_DIGITS
    return str(path), int(index) if readable else 0


def _locate(index: int, item: krm_text.Item) -> Located:
    """The item as cfgsync plans with it (bookkeeping annotations left out), its identity and file."""
    if item.body is None:
        # Not a kind the planner reads: its kind and namespace are all it needs (a namespace that
        # objects live in is taken to exist).
        where_ns: dict[str, object] = {"namespace": item.namespace} if item.namespace else {}
        stub = {"apiVersion": item.api_version, "kind": item.kind, "metadata": where_ns}
        return Document(body=stub, where=f"items[{index}]"), None, None
    body = _as_body(item.body, f"items[{index}]")
    meta = body.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        # The functions' bookkeeping names the item it is on; a copy carrying its source's would be
        # taken by kustomize for the source itself.
        kept = {k: v for k, v in meta["annotations"].items() if not is_bookkeeping(k)}
        body = {**body, "metadata": {**meta, "annotations": kept}}
    file = _item_file(item.body)
    where = f"items[{index}]" + (f" ({file[0]})" if file else "")
    return Document(body=body, where=where), streams.config_ref(body), file


def _rule_ref(doc: Document) -> ObjectRef | None:
    """A SyncRule document's identity (kind, namespace, name), when it has one."""
    body = doc.body
    if body.get("kind") != vocabulary.SYNC_RULE_KIND:
        return None
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return ObjectRef(
        kind=vocabulary.SYNC_RULE_KIND,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
    )


def _rule_refs(documents: Sequence[Document]) -> dict[str, ObjectRef]:
    """SyncRules by the subject their plan problems carry (``SyncRule ns/name``)."""
    refs = (_rule_ref(doc) for doc in documents)
    return {f"SyncRule {ref.namespace}/{ref.name}": ref for ref in refs if ref is not None}


def is_bookkeeping(key: object) -> bool:
    """True for the annotations kustomize and kpt use to track items (never copied onto copies).

    ``key`` is as the item's YAML wrote it, so it may be an unquoted integer, which is none of them.
    """
    return isinstance(key, str) and (key in _BOOKKEEPING_KEYS or key.startswith(_BOOKKEEPING_PREFIXES))


def _blame(located: Sequence[Located], exc: errors.ManifestError) -> list[Result]:
    """One error result per invalid item, found by reading each alone; else the whole message.

    A SyncRule's result names the rule (``resourceRef``) and the field that is wrong (``field``).
    """
    results: list[Result] = []
    for doc, ref, file in located:
        rule = _rule_ref(doc)
        try:
            if rule is not None and str(doc.body.get("apiVersion", "")).startswith(vocabulary.PREFIX):
                syncrule.rule_from_document(doc.body, where=doc.where)
            else:
                inventory.build_inventory([doc])
        except errors.RuleError as single:
            results.append(
                Result(
                    severity="error",
                    message=str(single),
                    ref=rule,
                    api_version=str(doc.body.get("apiVersion", "")),
                    field=single.field,
                    file=file,
                )
            )
        except errors.CfgsyncError as single:
            results.append(Result(severity="error", message=str(single), ref=ref, file=file))
    return results or [Result(severity="error", message=str(exc))]


def _plan_results(
    plan: Plan, files: Mapping[ObjectRef, tuple[str, int] | None], rules: Mapping[str, ObjectRef]
) -> list[Result]:
    """One result per finding of the plan, worded as everywhere else (the core's diagnostics).

    A finding about a SyncRule names the rule; one about a copy names the copy; else its source."""
    results: list[Result] = []
    for finding in diagnostics.diagnose(plan):
        rule = next((ref for subject, ref in rules.items() if finding.message.startswith(subject)), None)
        if rule is not None:
            results.append(
                Result(
                    severity=finding.severity.value,
                    message=finding.message,
                    ref=rule,
                    api_version=vocabulary.SYNC_RULE_API_VERSION,
                )
            )
            continue
        ref = finding.ref or next(iter(finding.subjects), None)
        results.append(
            Result(
                severity=finding.severity.value,
                message=finding.message,
                ref=ref,
                file=files.get(ref) if ref is not None else None,
            )
        )
    return results


def _with_bookkeeping(manifest: Mapping[str, Any], original: streams.Item | None) -> dict[str, Any]:
    """A copy with a file to go to: the one of the item it replaces, else its own under ``copies/``."""
    meta = dict(manifest["metadata"])
    annotations = dict(meta.get("annotations", {}))
    old = original.body.get("metadata") if original is not None else None
    old_annotations = old.get("annotations") if isinstance(old, Mapping) else None
    if isinstance(old_annotations, Mapping):
        annotations.update({k: v for k, v in old_annotations.items() if is_bookkeeping(k)})
    else:
        path = f"{COPIES_DIR}/{tree.copy_path(meta['namespace'], manifest['kind'], meta['name'])}"
        # Both spellings: kpt reads the internal one, older kustomize and kyaml the legacy one,
        # and kyaml rejects a list where the two disagree.
        annotations.update({PATH: path, INDEX: "0", INTERNAL_PATH: path, INTERNAL_INDEX: "0"})
    meta["annotations"] = annotations
    copy: dict[str, Any] = {**manifest, "metadata": meta}
    return copy


def _answer(
    parsed: krm_text.ResourceListText,
    kept: Sequence[krm_text.Item],
    results: Sequence[Result],
    *,
    copies: Sequence[Mapping[str, Any]],
) -> FunctionOutput:
    text = krm_text.write(parsed, kept, copies, [r.to_data() for r in results])
    return FunctionOutput(
        text=text,
        failed=any(r.severity == "error" for r in results),
        copies=len(copies),
        results=tuple(results),
    )
