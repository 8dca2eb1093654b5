"""Constant-velocity Kalman filter on boxes ``(cx, cy, w, h)``, batched over tracks.

The XYWH variant of ByteTrack's ``KalmanFilterXYAH`` (as BoT-SORT uses): the state of a track is
``(cx, cy, w, h, vcx, vcy, vw, vh)`` in pixels and pixels per second. Time steps are seconds, so
a dropped frame is a step of two frame periods, not one. The noise follows ByteTrack's, which is
given per frame at ``frame_rate``: a step of ``dt`` seconds adds ``dt * frame_rate`` times the
per-frame process variance (a random walk), and velocities are scaled to pixels per second.
"""

import numpy as np

STATE_SIZE = 8
MEASUREMENT_SIZE = 4
MIN_SIZE = 1.0  # px; widths and heights below it are raised to it for the noise


def corners_to_center_size(boxes: np.ndarray) -> np.ndarray:
    """Convert ``float[N, 4]`` x1, y1, x2, y2 boxes to ``float64[N, 4]`` cx, cy, w, h."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    size = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + 0.5 * size, size], axis=1)


def center_size_to_corners(boxes: np.ndarray) -> np.ndarray:
    """Convert ``float[N, 4]`` cx, cy, w, h to ``float64[N, 4]`` x1, y1, x2, y2 (w, h >= 0)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    half = 0.5 * np.maximum(boxes[:, 2:], 0.0)
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


class KalmanFilter:
    """Predict and correct ``T`` tracks' box states at once; the filter itself holds no tracks.

    Args:
        frame_rate: frames per second at which ByteTrack's per-frame noise applies.
        std_weight_position: position noise standard deviation per frame, in box sizes.
        std_weight_velocity: velocity noise standard deviation per frame, in box sizes per frame.
    """

    def __init__(self, frame_rate: float = 30.0, std_weight_position: float = 1.0 / 20,
                 std_weight_velocity: float = 1.0 / 160) -> None:
        if not frame_rate > 0:
            raise ValueError(f'frame_rate must be > 0, got {frame_rate}')
        self.frame_rate = float(frame_rate)
        self.std_weight_position = float(std_weight_position)
        self.std_weight_velocity = float(std_weight_velocity)

    def _sizes(self, boxes: np.ndarray) -> np.ndarray:
        """Return ``float64[T, 4]`` (w, h, w, h) of ``(cx, cy, w, h, ...)`` rows, >= MIN_SIZE."""
        size = np.maximum(boxes[:, 2:4], MIN_SIZE)
        return np.concatenate([size, size], axis=1)

    def initiate(self, measurements: np.ndarray):
        """Start tracks at ``float[T, 4]`` (cx, cy, w, h) measurements, at rest.

        Returns:
            ``float64[T, 8]`` means and ``float64[T, 8, 8]`` covariances.
        """
        measurements = np.asarray(measurements, np.float64).reshape(-1, MEASUREMENT_SIZE)
        count = len(measurements)
        mean = np.concatenate([measurements, np.zeros((count, 4))], axis=1)
        sizes = self._sizes(measurements)
        std = np.concatenate([2.0 * self.std_weight_position * sizes,
                              10.0 * self.std_weight_velocity * self.frame_rate * sizes], axis=1)
        covariance = np.zeros((count, STATE_SIZE, STATE_SIZE))
        diagonal = np.arange(STATE_SIZE)
        covariance[:, diagonal, diagonal] = std ** 2
        return mean, covariance

    def predict(self, mean: np.ndarray, covariance: np.ndarray, dt: float):
        """Move ``float[T, 8]`` means and ``float[T, 8, 8]`` covariances ``dt`` seconds ahead.

        Returns:
            The predicted ``float64[T, 8]`` means and ``float64[T, 8, 8]`` covariances.
        """
        if not dt >= 0:
            raise ValueError(f'dt must be >= 0 seconds, got {dt}')
        transition = np.eye(STATE_SIZE)
        transition[:4, 4:] = dt * np.eye(4)
        mean = mean @ transition.T
        steps = dt * self.frame_rate  # frame periods covered, for the random-walk variance
        sizes = self._sizes(mean)
        variance = np.concatenate([
            (self.std_weight_position * sizes) ** 2 * steps,
            (self.std_weight_velocity * self.frame_rate * sizes) ** 2 * steps], axis=1)
        covariance = transition @ covariance @ transition.T  # (T, 8, 8)
        diagonal = np.arange(STATE_SIZE)
        covariance[:, diagonal, diagonal] += variance
        return mean, covariance

    def update(self, mean: np.ndarray, covariance: np.ndarray, measurements: np.ndarray):
        """Correct ``float[T, 8]`` means and ``float[T, 8, 8]`` covariances by measurements.

        Args:
            mean: ``float[T, 8]`` predicted states.
            covariance: ``float[T, 8, 8]`` their covariances.
            measurements: ``float[T, 4]`` (cx, cy, w, h) measured boxes, one per track.

        Returns:
            The corrected ``float64[T, 8]`` means and ``float64[T, 8, 8]`` covariances.
        """
        measurements = np.asarray(measurements, np.float64).reshape(-1, MEASUREMENT_SIZE)
        noise = (self.std_weight_position * self._sizes(mean)) ** 2  # (T, 4)
        innovation_cov = covariance[:, :4, :4].copy()  # H P H^T, (T, 4, 4)
        diagonal = np.arange(MEASUREMENT_SIZE)
        innovation_cov[:, diagonal, diagonal] += noise
        # K^T = S^-1 H P (S and P symmetric): (T, 4, 4) solve (T, 4, 8) -> (T, 4, 8)
        gain = np.swapaxes(np.linalg.solve(innovation_cov, covariance[:, :4, :]), 1, 2)
        innovation = measurements - mean[:, :4]  # (T, 4)
        mean = mean + np.einsum('tij,tj->ti', gain, innovation)
        covariance = covariance - gain @ innovation_cov @ np.swapaxes(gain, 1, 2)
        return mean, covariance
