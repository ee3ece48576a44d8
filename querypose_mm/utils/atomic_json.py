import json
import os


def dump_json_atomically(data, path: str, indent: int = 1) -> None:
    """Write ``data`` as JSON to a temporary name beside ``path``, then
    rename it: a reader (or a kill mid-write) never leaves half a file
    where a good one was."""
    partial = path + '.partial'
    with open(partial, 'w') as f:
        json.dump(data, f, indent=indent)
    os.replace(partial, path)
