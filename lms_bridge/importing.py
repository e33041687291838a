"""
Importing the classes that settings name by dotted path (schemes, backends).

Pure Python (no Django), so the signature package can use it.
"""
from importlib import import_module


def import_subclass(path, base, what):
    """
    Import the class at dotted ``path`` and check that it subclasses ``base``.

    Arguments:
        path (str): ``package.module.ClassName``.
        base (type): the class it must derive from.
        what (str): what the class is, for error messages ("backend"...).

    Returns:
        type: the class.

    Raises:
        ImportError: ``path`` is not a dotted path, cannot be imported, or is not a ``base`` subclass.
    """
    if not isinstance(path, str) or "." not in path:
        raise ImportError(f"{what} must be a dotted path, not {path!r}")
    module_path, _, class_name = path.rpartition(".")
    try:
        imported = getattr(import_module(module_path), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImportError(f"cannot import {what} {path!r}: {exc}") from exc
    if not (isinstance(imported, type) and issubclass(imported, base)):
        raise ImportError(f"{path!r} is not a {base.__name__} subclass")
    return imported
