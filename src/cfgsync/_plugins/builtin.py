"""The built-in transforms, as an ordinary plugin (registered through the ``cfgsync`` entry point).

They read the rule's key and name settings and delegate to the pure functions in
``cfgsync._core.transforms``. They run first (``tryfirst``), in the order filter, rename, name.
"""

from __future__ import annotations

from cfgsync._core import transforms
from cfgsync._core.model import ConfigObject, Copy, Namespace
from cfgsync._core.rules import Rule
from cfgsync.hookspecs import hookimpl


@hookimpl(tryfirst=True)
def cfgsync_transform_copy(copy: Copy, source: ConfigObject, namespace: Namespace, rule: Rule) -> Copy | None:
    """Filter keys, rename keys and name the copy as the rule says."""
    del source, namespace  # the built-ins depend on the rule alone
    if rule.keys.is_identity and rule.copy_name is None:
        return None
    copy = transforms.filter_keys(copy, rule.keys)
    copy = transforms.rename_keys(copy, rule.keys)
    return transforms.rename_copy(copy, rule.copy_name)
