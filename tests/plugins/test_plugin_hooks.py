"""Plugins: the built-in transforms, third-party transforms and vetoes, and failing plugins."""

from __future__ import annotations

import dataclasses

import pytest

from cfgsync import ConfigObject, Copy, Namespace, Rule, errors, hookimpl
from cfgsync._core.model import frozen
from cfgsync._plugins.manager import load_plugins
from cfgsync.testing import config_map, namespace, plan

SPACES = [namespace("src"), namespace("a", {"tier": "web"}), namespace("b", {"no-copies": "true"})]


def source(**annotations: str) -> ConfigObject:
    return config_map(
        "src",
        "certs",
        {"root.crt": "R", "leaf.crt": "L", "leaf.key": "K", "notes": "N"},
        annotations={"kubed.appscode.com/sync": "", **annotations},
    )


def test_builtin_include_exclude_rename_and_copy_name() -> None:
    result = plan(
        [
            source(
                **{
                    "cfgsync.io/include-keys": "*.crt,*.key",
                    "cfgsync.io/exclude-keys": "*.key",
                    "cfgsync.io/rename-keys": "root.crt=ca.crt",
                    "cfgsync.io/copy-name": "trusted",
                }
            )
        ],
        SPACES,
    )
    assert [str(c.ref) for c in result.copies] == ["ConfigMap a/trusted", "ConfigMap b/trusted"]
    assert dict(result.copies[0].data) == {"ca.crt": "R", "leaf.crt": "L"}


def test_rename_onto_a_kept_key_is_a_problem() -> None:
    result = plan([source(**{"cfgsync.io/rename-keys": "root.crt=leaf.crt"})], SPACES)
    assert result.copies == ()
    assert "gives two values for 'leaf.crt'" in result.problems[0].message


class Prefixer:
    """A third-party transform: runs after the built-ins, sees their result."""

    __name__ = "prefixer"

    @hookimpl
    def cfgsync_transform_copy(self, copy: Copy) -> Copy:
        return dataclasses.replace(copy, data=frozen({f"x-{k}": v for k, v in copy.data.items()}))


class Dropper:
    __name__ = "dropper"

    @hookimpl
    def cfgsync_veto_copy(self, namespace: Namespace) -> str | None:
        return "namespace opted out" if namespace.labels.get("no-copies") == "true" else None


def test_third_party_transform_sees_builtin_result_and_veto_is_reported() -> None:
    result = plan(
        [source(**{"cfgsync.io/include-keys": "root.crt"})], SPACES, extra_plugins=[Prefixer(), Dropper()]
    )
    assert [str(c.ref) for c in result.copies] == ["ConfigMap a/certs"]
    assert dict(result.copies[0].data) == {"x-root.crt": "R"}
    (veto,) = result.vetoes
    assert (veto.plugin, veto.reason, veto.ref.namespace) == ("dropper", "namespace opted out", "b")


class Broken:
    __name__ = "broken"

    @hookimpl
    def cfgsync_transform_copy(self, copy: Copy, rule: Rule) -> Copy:
        raise ValueError("boom")


class Mover:
    __name__ = "mover"

    @hookimpl
    def cfgsync_transform_copy(self, copy: Copy) -> Copy:
        return dataclasses.replace(copy, ref=dataclasses.replace(copy.ref, namespace="elsewhere"))


class WrongType:
    __name__ = "wrongtype"

    @hookimpl
    def cfgsync_transform_copy(self, copy: Copy) -> object:
        return {"not": "a copy"}


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (
            Broken(),
            "plugin 'broken' failed on the copy ConfigMap a/certs of ConfigMap src/certs: ValueError: boom",
        ),
        (Mover(), "plugin 'mover' moved the copy ConfigMap a/certs to another namespace"),
        (WrongType(), "plugin 'wrongtype' returned dict for ConfigMap a/certs"),
    ],
)
def test_failing_plugin_is_named_with_the_object(plugin: object, expected: str) -> None:
    result = plan([source()], SPACES, extra_plugins=[plugin])
    assert result.copies == ()
    assert expected in result.problems[0].message
    assert result.problems[0].ref == source().ref


def test_unknown_hook_in_a_plugin_is_refused() -> None:
    class Typo:
        __name__ = "typo"

        @hookimpl
        def cfgsync_transfrom_copy(self, copy: Copy) -> None:
            return None

    with pytest.raises(errors.PluginError, match="typo"):
        load_plugins(only=(), extra=[Typo()])


def test_builtin_is_always_loaded() -> None:
    assert "builtin" in load_plugins(only=()).names


class Labeller:
    """A transform that adds a label the API server would refuse."""

    __name__ = "labeller"

    @hookimpl
    def cfgsync_transform_copy(self, copy: Copy) -> Copy:
        return dataclasses.replace(copy, labels=frozen({**copy.labels, "team": "platform team"}))


def test_a_plugin_giving_a_copy_an_invalid_label_is_a_problem_naming_it() -> None:
    result = plan([source()], SPACES, extra_plugins=[Labeller()])

    assert result.copies == ()
    assert "plugin 'labeller' gave the copy invalid metadata" in result.problems[0].message
    assert "metadata.labels.team value 'platform team' is invalid" in result.problems[0].message
