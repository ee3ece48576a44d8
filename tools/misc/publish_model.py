"""mmpose's tools/misc/publish_model.py for this project's checkpoints.

    python tools/misc/publish_model.py IN_FILE OUT_FILE [--save-keys meta ...]

mmpose's script loads the checkpoint with ``torch.load``, which under
torch >= 2.6 refuses the numpy objects mmengine checkpoints hold unless
``querypose_mm`` (which allowlists them, see docs/checkpoints.md) is
imported first; this wrapper imports it and runs mmpose's script unchanged.
It drops the optimizer state and writes ``OUT_FILE`` with the first 8 hex
digits of its SHA-256 appended to the name, as mmpose does.
"""
import os.path as osp
import runpy
import sys

import mmpose
import querypose_mm  # noqa: F401  (weights_only allowlist)

if __name__ == '__main__':
    script = osp.join(
        osp.dirname(mmpose.__file__), '.mim', 'tools', 'misc',
        'publish_model.py')
    sys.argv[0] = script
    runpy.run_path(script, run_name='__main__')
