"""Training scalars: CSV files (always), TensorBoard (when installed) and a loss-curve PNG."""

import csv
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

LOGGER = logging.getLogger(__name__)

TRAIN_CSV = 'metrics.csv'
VAL_CSV = 'val.csv'
CURVE_PNG = 'loss_curve.png'


def _read_rows(path: Path, up_to: int) -> List[Dict[str, str]]:
    """Rows of a CSV whose ``iteration`` is at most ``up_to`` (a resumed run drops the rest)."""
    if not path.is_file():
        return []
    with open(path, newline='', encoding='utf-8') as stream:
        return [row for row in csv.DictReader(stream) if int(row['iteration']) <= up_to]


class MetricsLogger:
    """Append training and validation scalars to ``metrics.csv`` / ``val.csv`` and TensorBoard.

    Args:
        out_dir: run directory.
        train_columns: scalar names of each training row (after ``iteration``).
        start_iteration: 0 for a new run; for a resumed run, rows after it are dropped.
        tensorboard: also write TensorBoard events under ``out_dir/tensorboard``.
    """

    def __init__(self, out_dir: Path, train_columns: Sequence[str], *, start_iteration: int = 0,
                 tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.train_columns = ['iteration', *train_columns]
        self.history = _read_rows(self.out_dir / TRAIN_CSV, start_iteration)
        self.val_history = _read_rows(self.out_dir / VAL_CSV, start_iteration)
        self._val_columns: Optional[List[str]] = (
            list(self.val_history[0]) if self.val_history else None)
        self._train_file = open(self.out_dir / TRAIN_CSV, 'w', newline='', encoding='utf-8')
        self._train_writer = csv.DictWriter(self._train_file, self.train_columns,
                                            extrasaction='ignore')
        self._train_writer.writeheader()
        self._train_writer.writerows(self.history)
        self._train_file.flush()
        if self.val_history:  # rewrite without the dropped rows
            self._write_val_file()
        self._tensorboard = self._open_tensorboard() if tensorboard else None

    def _open_tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            LOGGER.warning('TensorBoard logging off (%s); pip install tensorboard for it', error)
            return None
        return SummaryWriter(str(self.out_dir / 'tensorboard'))

    def log_train(self, iteration: int, values: Dict[str, float]) -> None:
        """Record one training iteration's scalars."""
        row = {'iteration': iteration, **{k: f'{v:.9g}' for k, v in values.items()}}
        self.history.append({k: str(v) for k, v in row.items()})
        self._train_writer.writerow(row)
        self._train_file.flush()
        if self._tensorboard is not None:
            for name, value in values.items():
                self._tensorboard.add_scalar(f'train/{name}', value, iteration)

    def log_val(self, iteration: int, values: Dict[str, float]) -> None:
        """Record one validation's metrics (e.g. ``box_AP``, ``mask_AP``)."""
        row = {'iteration': str(iteration), **{k: f'{v:.9g}' for k, v in values.items()}}
        self.val_history.append(row)
        self._write_val_file()
        if self._tensorboard is not None:
            for name, value in values.items():
                self._tensorboard.add_scalar(f'val/{name}', value, iteration)

    def _write_val_file(self) -> None:
        columns = list(self.val_history[-1])
        with open(self.out_dir / VAL_CSV, 'w', newline='', encoding='utf-8') as stream:
            writer = csv.DictWriter(stream, columns, extrasaction='ignore')
            writer.writeheader()
            writer.writerows(self.val_history)

    def plot(self, title: str = '') -> Optional[Path]:
        """Draw the loss terms (and validation AP) against iterations into ``loss_curve.png``."""
        if not self.history:
            return None
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        iterations = [int(row['iteration']) for row in self.history]
        loss_names = [c for c in self.train_columns if c.startswith('loss')]
        panels = 2 if self.val_history else 1
        figure, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5), squeeze=False)
        losses_axis = axes[0][0]
        for name in loss_names:
            values = [float(row[name]) if row.get(name) else float('nan')
                      for row in self.history]
            style = {'color': 'black', 'linewidth': 1.6} if name == 'loss' else {
                'linewidth': 0.9, 'alpha': 0.85}
            losses_axis.plot(iterations, _smooth(values), label=name, **style)
        losses_axis.set_yscale('log')
        losses_axis.set_xlabel('iteration')
        losses_axis.set_ylabel('loss (unweighted terms; "loss" = weighted total)')
        losses_axis.grid(alpha=0.3)
        losses_axis.legend(fontsize=8)
        if self.val_history:
            val_axis = axes[0][1]
            val_iterations = [int(row['iteration']) for row in self.val_history]
            for name in ('mask_AP', 'box_AP'):
                if name in self.val_history[0]:
                    val_axis.plot(val_iterations, [float(r[name]) for r in self.val_history],
                                  marker='o', label=name)
            val_axis.set_xlabel('iteration')
            val_axis.set_ylabel('validation AP')
            val_axis.grid(alpha=0.3)
            val_axis.legend(fontsize=8)
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        path = self.out_dir / CURVE_PNG
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path

    def close(self) -> None:
        """Close the CSV file and the TensorBoard writer."""
        self._train_file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _smooth(values: List[float], window: int = 20) -> List[float]:
    """Trailing moving average over ``window`` iterations (per-iteration losses are noisy)."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(data)))
    ends = np.arange(1, len(data) + 1)
    counts = np.minimum(ends, window)
    return list((cumulative[ends] - cumulative[ends - counts]) / counts)
