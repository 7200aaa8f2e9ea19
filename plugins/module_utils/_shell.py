# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# The one way a module shell turns the core's result or error into Ansible's answer.

"""``run(module, work)``: every module's ``main()`` ends here, so errors map to ``fail_json`` in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.zerotouch.selfheal.plugins.module_utils._errors import MissingLibraryError, SelfHealError


def run(module: Any, work: Callable[[], dict[str, Any]]) -> None:
    """Run ``work`` and exit the module with its result; a missing library or a collection error fails it.

    Anything else is a bug and keeps Ansible's own traceback.
    """
    try:
        result = work()
    except MissingLibraryError as exc:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.traceback)
        return
    except SelfHealError as exc:
        module.fail_json(msg=str(exc))
        return
    module.exit_json(**result)
