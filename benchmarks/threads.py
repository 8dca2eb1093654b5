"""Per-frame time of the bundled demo model by thread count, with busy processes beside it.

Each (backend, threads) setting runs in its own fresh worker process (torch's inter-op count
cannot change once set); the workers stay alive and take turns, one frame each, so that load
changes on a shared machine hit every setting alike. For each count of background processes
(each burns one core in a Python loop, killed at the end and bounded in time anyway) every
worker runs ``--frames`` frames; the table gives the median and p90 per frame and the ratio
of the median to the ``default`` setting's (torch's or ONNX Runtime's own thread count)::

    # 1, 2, 4 threads and the runtimes' defaults, torch and ONNX Runtime (2-4 min on 2 cores)
    .venv/bin/python benchmarks/threads.py
    .venv/bin/python benchmarks/threads.py --frames 5 --settings 1,default --backends torch
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

FRAME_SIZE = (640, 480)  # width, height
WARMUP_FRAMES = 2
# A background process ends by itself after this many seconds, should the benchmark die.
BURNER_LIFETIME_S = 900
BURNER = ('import time\nend = time.monotonic() + {lifetime}\n'
          'while time.monotonic() < end:\n    pass\n')


def parse_settings(text: str) -> List[str]:
    """Return the thread settings of ``--settings`` (counts >= 1 or ``default``)."""
    settings = [item.strip() for item in text.split(',') if item.strip()]
    for setting in settings:
        if setting != 'default' and not (setting.isdigit() and int(setting) >= 1):
            raise SystemExit(f'--settings: expected counts >= 1 or "default", got {setting!r}')
    if not settings:
        raise SystemExit('--settings: no setting given')
    return settings


def parse_counts(text: str) -> List[int]:
    """Return the background process counts of ``--background``."""
    try:
        counts = [int(item) for item in text.split(',') if item.strip()]
    except ValueError:
        raise SystemExit(f'--background: expected counts such as 0,1,2, got {text!r}') from None
    if not counts or min(counts) < 0:
        raise SystemExit(f'--background: expected counts >= 0, got {text!r}')
    return counts


def worker(backend: str, setting: str, frames: int, cache_dir: str) -> None:
    """Load the demo model with ``setting`` threads; run one frame per line read on stdin."""
    import torch

    from yolact_ros.data.synthetic_sequence import synthetic_video_frames
    from yolact_ros.runtime import set_threads
    from yolact_ros.weights import demo_weights

    if setting != 'default':
        set_threads(int(setting))
    if backend == 'torch':
        from yolact_ros.inference import Segmenter

        segmenter = Segmenter.from_weights(demo_weights(), device='cpu')
        applied = f'torch {torch.get_num_threads()} intra / {torch.get_num_interop_threads()} ' \
                  'inter-op'
    else:
        from yolact_ros.export.backends import load_segmenter

        segmenter = load_segmenter(demo_weights(), backend='onnxruntime', device='cpu',
                                   cache_dir=cache_dir)
        options = segmenter.model.session.get_session_options()
        applied = f'onnxruntime {options.intra_op_num_threads} intra / ' \
                  f'{options.inter_op_num_threads} inter-op (0: its default)'
    images = [scene.image for scene in synthetic_video_frames(frames, FRAME_SIZE, seed=0)]
    for image in images[:WARMUP_FRAMES]:
        segmenter(image)
    print(json.dumps({'ready': applied}), flush=True)
    index = 0
    for _ in sys.stdin:
        start = time.perf_counter()
        segmenter(images[index % len(images)])
        print(json.dumps({'ms': (time.perf_counter() - start) * 1e3}), flush=True)
        index += 1


class Worker:
    """A worker process for one (backend, threads) setting, driven over its stdin/stdout."""

    def __init__(self, backend: str, setting: str, frames: int, cache_dir: str) -> None:
        """Start the worker; :meth:`wait_ready` waits for its model to load."""
        self.backend, self.setting = backend, setting
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), '--worker', backend, setting,
             '--frames', str(frames), '--cache-dir', cache_dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.applied = ''
        self.times: Dict[int, List[float]] = {}

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f'worker {self.backend} threads={self.setting} exited '
                             f'(code {self.process.wait()})')
        return json.loads(line)

    def wait_ready(self) -> None:
        """Wait until the worker has loaded its model and warmed up."""
        self.applied = self._read()['ready']

    def frame(self, background: int) -> None:
        """Run one frame and keep its time under ``background`` busy processes."""
        self.process.stdin.write('\n')
        self.process.stdin.flush()
        self.times.setdefault(background, []).append(self._read()['ms'])

    def close(self) -> None:
        """End the worker process."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_burners(count: int) -> List[subprocess.Popen]:
    """Start ``count`` processes that each keep one core busy."""
    code = BURNER.format(lifetime=BURNER_LIFETIME_S)
    return [subprocess.Popen([sys.executable, '-c', code]) for _ in range(count)]


def stop_burners(burners: Sequence[subprocess.Popen]) -> None:
    """Kill the busy processes started by :func:`start_burners`."""
    for burner in burners:
        burner.kill()
    for burner in burners:
        burner.wait()


def load_text() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return ' / '.join(f'{value:.2f}' for value in os.getloadavg())


def cell(times: Sequence[float], reference: Optional[float]) -> str:
    """Return ``median / p90 (ratio)`` in ms, ratio = ``reference`` / median."""
    median, p90 = np.median(times), np.percentile(times, 90)
    ratio = f' ({reference / median:.2f}x)' if reference else ''
    return f'{median:.0f} / {p90:.0f}{ratio}'


def table(workers: Sequence[Worker], counts: Sequence[int]) -> str:
    """Return the markdown table of the workers' frame times per background count."""
    lines = ['| backend | threads | ' + ' | '.join(
        f'{count} busy: median / p90 ms (vs default)' for count in counts) + ' |',
        '|---|---|' + '---|' * len(counts)]
    for current in workers:
        default = next((w for w in workers if w.backend == current.backend
                        and w.setting == 'default'), None)
        cells = []
        for count in counts:
            reference = np.median(default.times[count]) if default else None
            cells.append(cell(current.times[count], reference))
        lines.append(f'| {current.backend} | {current.setting} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def available_backends(names: Sequence[str]) -> List[str]:
    """Return ``names`` without ``onnxruntime`` where it is not installed (said on stdout)."""
    if 'onnxruntime' in names:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print('onnxruntime is not installed: its rows are left out')
            return [name for name in names if name != 'onnxruntime']
    return list(names)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the benchmark (or, with ``--worker``, one worker) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=12,
                        help='timed frames per setting and background count (default 12)')
    parser.add_argument('--settings', default='1,2,4,default',
                        help='thread counts, comma separated; "default" leaves the runtime\'s '
                             'own (default 1,2,4,default)')
    parser.add_argument('--backends', default='torch,onnxruntime',
                        help='torch and/or onnxruntime (default both, if installed)')
    parser.add_argument('--background', default='0,1,2',
                        help='counts of busy background processes (default 0,1,2)')
    parser.add_argument('--worker', nargs=2, metavar=('BACKEND', 'SETTING'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--cache-dir', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames < 1:
        raise SystemExit(f'--frames must be >= 1, got {args.frames}')
    if args.worker:
        worker(*args.worker, frames=args.frames, cache_dir=args.cache_dir)
        return
    settings = parse_settings(args.settings)
    counts = parse_counts(args.background)
    backends = [name.strip() for name in args.backends.split(',') if name.strip()]
    unknown = sorted(set(backends) - {'torch', 'onnxruntime'})
    if unknown or not backends:
        raise SystemExit(f'--backends: expected torch and/or onnxruntime, got {args.backends!r}')
    backends = available_backends(backends)

    import torch

    print(f'{os.cpu_count()} CPUs, torch {torch.__version__} (default '
          f'{torch.get_num_threads()} threads), {args.frames} frames of '
          f'{FRAME_SIZE[0]}x{FRAME_SIZE[1]} per cell, load average before: {load_text()}')
    with tempfile.TemporaryDirectory(prefix='yolact_threads_') as cache_dir:
        if 'onnxruntime' in backends:  # exported once here, not by each worker
            from yolact_ros.export.backends import cached_onnx
            from yolact_ros.weights import demo_weights

            cached_onnx(demo_weights(), cache_dir=cache_dir)
        workers = [Worker(backend, setting, args.frames, cache_dir)
                   for backend in backends for setting in settings]
        burners: List[subprocess.Popen] = []
        try:
            for current in workers:
                current.wait_ready()
                print(f'  {current.backend} threads={current.setting}: {current.applied}')
            for count in counts:
                burners = start_burners(count)
                for _ in range(args.frames):
                    for current in workers:
                        current.frame(count)
                stop_burners(burners)
                burners = []
        finally:
            stop_burners(burners)
            for current in workers:
                current.close()
    print(f'load average after: {load_text()}\n')
    print(table(workers, counts))


if __name__ == '__main__':
    main()
