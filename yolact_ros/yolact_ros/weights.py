"""The manifest of official checkpoints, and downloading them into a local cache."""

import hashlib
import json
import os
from pathlib import Path
import sys
from typing import Dict, List, Optional

MANIFEST_NAME = 'manifest.json'
# The small model trained on synthetic shapes that ships in weights/ (see weights/README.md).
DEMO_WEIGHTS = 'yolact_resnet18_synth.safetensors'


class WeightsError(RuntimeError):
    """A checkpoint cannot be found, downloaded or verified; the message says which and why."""


def weights_dir() -> Path:
    """Locate the ``weights/`` folder (manifest and bundled models).

    Looks at ``$YOLACT_WEIGHTS_DIR``, the source checkout (editable installs), then the
    ``share/yolact_ros/weights`` folder of a colcon or pip install.
    """
    here = Path(__file__).resolve()
    candidates = [Path(os.environ['YOLACT_WEIGHTS_DIR'])] if 'YOLACT_WEIGHTS_DIR' in os.environ \
        else []
    candidates += [here.parents[2] / 'weights',
                   Path(sys.prefix) / 'share' / 'yolact_ros' / 'weights']
    # colcon: <prefix>/lib/pythonX.Y/site-packages/yolact_ros/weights.py
    candidates += [parent / 'share' / 'yolact_ros' / 'weights' for parent in here.parents[:6]]
    for candidate in candidates:
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    raise WeightsError('cannot find the weights manifest; looked in: '
                       + ', '.join(str(c) for c in candidates))


def demo_weights() -> Path:
    """Return the path of the bundled demo model (it may be missing in a partial install)."""
    return weights_dir() / DEMO_WEIGHTS


def cache_dir() -> Path:
    """Return where downloaded checkpoints are kept (``$YOLACT_CACHE`` or ~/.cache/yolact_ros)."""
    default = Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'yolact_ros'
    return Path(os.environ.get('YOLACT_CACHE', default))


def official_weights() -> List[Dict]:
    """Return the manifest's official checkpoints (name, file, config, url, mask_ap, ...)."""
    with open(weights_dir() / MANIFEST_NAME, encoding='utf-8') as stream:
        return json.load(stream)['official']


def bundled_entry() -> Dict:
    """Return the manifest's entry for the bundled demo model, with ``path`` added."""
    with open(weights_dir() / MANIFEST_NAME, encoding='utf-8') as stream:
        entry = dict(json.load(stream)['bundled'])
    entry['path'] = str(weights_dir() / entry['file'])
    return entry


def find_official(name: str) -> Dict:
    """Return the manifest entry whose name or file name is ``name``."""
    entries = official_weights()
    for entry in entries:
        if name in (entry['name'], entry['file']):
            return entry
    raise WeightsError(f'unknown checkpoint {name!r}; known: '
                       + ', '.join(e['name'] for e in entries))


def download(name: str, *, destination: Optional[Path] = None, timeout: float = 30.0) -> Path:
    """Fetch an official checkpoint into the cache (once) and verify it loads strictly.

    Returns the local path. Raises :class:`WeightsError` with one clear line when offline, when
    the server refuses, or when the file is not the checkpoint it should be.
    """
    import urllib.error
    import urllib.request

    from yolact_ros.checkpoint import CheckpointError, load_model

    entry = find_official(name)
    target = Path(destination or cache_dir()) / entry['file']
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + '.part')
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(entry['url'], timeout=timeout) as response, \
                    open(partial, 'wb') as stream:
                _copy_with_progress(response, stream, digest, entry['file'])
        except (urllib.error.URLError, OSError) as error:
            partial.unlink(missing_ok=True)
            reason = getattr(error, 'reason', error)
            raise WeightsError(f'cannot download {entry["file"]} from {entry["url"]}: {reason}. '
                               'Without network access, download it elsewhere and pass its '
                               'path to --weights.') from None
        expected = entry.get('sha256')
        if expected and digest.hexdigest() != expected:
            partial.unlink(missing_ok=True)
            raise WeightsError(f'{entry["file"]}: sha256 {digest.hexdigest()} does not match '
                               f'the manifest ({expected})')
        os.replace(partial, target)
    try:
        load_model(target, entry['config'])
    except (CheckpointError, ValueError) as error:
        raise WeightsError(f'{target} is not a valid {entry["config"]} checkpoint: {error}')
    return target


def _copy_with_progress(response, stream, digest, label: str) -> None:
    from tqdm import tqdm

    total = int(response.headers.get('Content-Length') or 0) or None
    with tqdm(total=total, unit='B', unit_scale=True, desc=label) as progress:
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                break
            stream.write(chunk)
            digest.update(chunk)
            progress.update(len(chunk))
