from typing import Dict


def rename_keys(state_dict: dict, prefix: str, renames: Dict[str,
                                                             str]) -> None:
    """Rename, in place, the keys ``prefix + old + rest`` of a state dict to
    ``prefix + new + rest`` for each ``old -> new`` of ``renames``.

    For the ``_load_from_state_dict`` hooks that keep checkpoints of an older
    module layout loadable (the layout's ``_version`` is in the metadata).
    """
    for key in list(state_dict):
        for old, new in renames.items():
            if key.startswith(prefix + old):
                rest = key[len(prefix + old):]
                state_dict[prefix + new + rest] = state_dict.pop(key)
                break
