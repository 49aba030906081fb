"""Loading plugins and calling their hooks: the facade the planner sees as ``CopyHooks``.

I/O: imports plugin modules found through the ``cfgsync`` entry-point group.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Collection, Iterable, Mapping
from typing import Any, TypeGuard

import pluggy

from cfgsync import errors, hookspecs
from cfgsync._core import manifests
from cfgsync._core.model import ConfigObject, Copy, Namespace, Veto
from cfgsync._core.rules import Rule
from cfgsync._plugins import builtin

BUILTIN = "builtin"
"""Name of the built-in transforms plugin; always loaded, since rule semantics depend on it."""


class PluginHooks:
    """Calls every registered plugin for the planner, naming the plugin in every failure."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self._orders: dict[str, list[pluggy.HookImpl]] = {}

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the registered plugins, sorted."""
        return tuple(sorted(name for name, _ in self.manager.list_name_plugin() if name))

    def _call_order(self, hook: Any) -> list[pluggy.HookImpl]:
        # pluggy calls the last entry first; the transform chain keeps that order. Every plugin is
        # registered before the planner runs, so the order is worked out once per hook, not per copy.
        order = self._orders.get(hook.name)
        if order is None:
            order = self._orders[hook.name] = list(reversed(hook.get_hookimpls()))
        return order

    def _call(self, impl: pluggy.HookImpl, copy: Copy, kwargs: dict[str, object]) -> object:
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            return impl.function(**args)
        except errors.CfgsyncError:
            raise
        except Exception as exc:
            raise errors.PluginError(
                f"plugin {impl.plugin_name!r} failed on the copy {copy.ref} of {copy.source}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def transform(self, copy: Copy, *, source: ConfigObject, namespace: Namespace, rule: Rule) -> Copy:
        """Run the transform chain; each plugin sees the copy the one before it returned."""
        kwargs: dict[str, object] = {"copy": copy, "source": source, "namespace": namespace, "rule": rule}
        for impl in self._call_order(self.manager.hook.cfgsync_transform_copy):
            kwargs["copy"] = copy
            result = self._call(impl, copy, kwargs)
            if result is None:
                continue
            if not isinstance(result, Copy):
                raise errors.PluginError(
                    f"plugin {impl.plugin_name!r} returned {type(result).__name__} for {copy.ref}; "
                    f"cfgsync_transform_copy must return a Copy or None"
                )
            if result.ref.namespace != copy.ref.namespace or result.source != copy.source:
                raise errors.PluginError(
                    f"plugin {impl.plugin_name!r} moved the copy {copy.ref} to another namespace or source; "
                    f"a transform may change the name and content only"
                )
            if result.labels is not copy.labels or result.annotations is not copy.annotations:
                try:
                    manifests.check_metadata(result.labels, result.annotations, subject=str(result.ref))
                except errors.ManifestError as exc:
                    raise errors.PluginError(
                        f"plugin {impl.plugin_name!r} gave the copy invalid metadata: {exc}"
                    ) from exc
            copy = result
        return copy

    def veto(self, copy: Copy, *, source: ConfigObject, namespace: Namespace, rule: Rule) -> Veto | None:
        """The first plugin's refusal, or None."""
        kwargs: dict[str, object] = {"copy": copy, "source": source, "namespace": namespace, "rule": rule}
        for impl in self._call_order(self.manager.hook.cfgsync_veto_copy):
            reason = self._call(impl, copy, kwargs)
            if reason is not None:
                return Veto(ref=copy.ref, source=copy.source, plugin=impl.plugin_name, reason=str(reason))
        return None

    def tree_object(self, copy: Copy, *, source: ConfigObject) -> Mapping[str, object] | None:
        """The first plugin's replacement for a copy written to a rendered tree, or None."""
        for impl in self._call_order(self.manager.hook.cfgsync_tree_object):
            kwargs: dict[str, object] = {"copy": copy, "source": source}
            result = self._call(impl, copy, kwargs)
            if result is None:
                continue
            if not _is_object(result):
                raise errors.PluginError(
                    f"plugin {impl.plugin_name!r} returned no Kubernetes object for {copy.ref}; "
                    f"cfgsync_tree_object must return apiVersion, kind and metadata.name, or None"
                )
            namespace = result["metadata"].get("namespace", copy.ref.namespace)
            if namespace != copy.ref.namespace:
                raise errors.PluginError(
                    f"plugin {impl.plugin_name!r} moved {copy.ref} to namespace {namespace!r}; "
                    f"the object it writes instead must stay in the copy's namespace"
                )
            return result
        return None


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    """True for a mapping with non-empty string apiVersion, kind and metadata.name."""
    if not isinstance(value, Mapping) or not isinstance(value.get("metadata"), Mapping):
        return False
    fields = (value.get("apiVersion"), value.get("kind"), value["metadata"].get("name"))
    return all(isinstance(v, str) and v for v in fields)


def load_plugins(*, only: Collection[str] | None = None, extra: Iterable[object] = ()) -> PluginHooks:
    """A manager with the built-in transforms, the installed plugins, and ``extra`` plugin objects.

    ``only`` limits which installed plugins (by entry-point name) are loaded; None loads all of them.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name=BUILTIN)
    for entry in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        if entry.name == BUILTIN or (only is not None and entry.name not in only):
            continue
        try:
            plugin = entry.load()
        except Exception as exc:
            raise errors.PluginError(
                f"plugin {entry.name!r} ({entry.value}) cannot be loaded: {type(exc).__name__}: {exc}; "
                f"reinstall it, or leave it out with CFGSYNC_PLUGINS"
            ) from exc
        _register(manager, plugin, entry.name)
    for index, plugin in enumerate(extra):
        _register(manager, plugin, getattr(plugin, "__name__", f"extra-{index}"))
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or repr(exc.plugin)
        raise errors.PluginError(
            f"plugin {name!r} is invalid: {exc}; see docs/plugins.md for the hooks"
        ) from exc
    return PluginHooks(manager)


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        manager.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise errors.PluginError(
            f"plugin {name!r} is invalid: {exc}; see docs/plugins.md for the hooks"
        ) from exc
