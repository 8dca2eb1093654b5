"""Loading and saving weights: official upstream ``.pth`` files and the project's safetensors.

Upstream checkpoints are plain state dicts; their keys are mapped onto this project's module
names and loaded strictly. The project's own checkpoints are safetensors files whose metadata
carries the model config, so a file says what model it is. Nothing here unpickles code.
"""

import json
import logging
import os
from pathlib import Path
import re
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union
import uuid

import torch
from torch import nn

from yolact_ros.config import CONFIGS, get_config, ModelConfig

LOGGER = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
FORMAT_NAME = 'yolact_ros'

# Upstream prefix -> this project's prefix, applied in order (first match wins).
UPSTREAM_KEY_PREFIXES = (
    ('prediction_layers.0.', 'prediction_head.'),
    ('semantic_seg_conv.', 'semantic_head.'),
    ('maskiou_net.maskiou_net.', 'maskiou_net.layers.'),
    ('backbone._preconv.', 'backbone.stem.'),  # DarkNet-53
)
_UPSTREAM_LAYER = re.compile(r'^backbone\.layers\.(\d+)\.')

# Layers whose shape depends on the number of classes: class logits, semantic head and the last
# (1x1, K outputs) conv of YOLACT++'s mask re-scoring net.
CLASS_DEPENDENT_PREFIXES = ('prediction_head.conf_layer.', 'semantic_head.',
                            'maskiou_net.layers.10.')


class CheckpointError(ValueError):
    """A weights file is missing, unreadable or does not fit the model; the message says why."""


def upstream_to_project_key(key: str) -> str:
    """Map one upstream state-dict key to this project's name for the same tensor."""
    match = _UPSTREAM_LAYER.match(key)
    if match:
        # upstream backbone.layers.{0..3} are torchvision's layer1..layer4 (DarkNet: ..layer5)
        return f'backbone.layer{int(match.group(1)) + 1}.' + key[match.end():]
    for upstream_prefix, project_prefix in UPSTREAM_KEY_PREFIXES:
        if key.startswith(upstream_prefix):
            return project_prefix + key[len(upstream_prefix):]
    return key


def infer_upstream_config_name(path: PathLike, state_dict: Mapping[str, torch.Tensor]) -> str:
    """Guess the config of an upstream checkpoint: from its file name, else from its keys.

    File names follow upstream's ``<config>_<epoch>_<iteration>.pth`` (the longest config name
    that prefixes the file name wins). Keys alone cannot tell ``yolact_base`` from
    ``yolact_im700`` (same shapes), so the name is preferred.
    """
    stem = Path(path).name
    for name in sorted(CONFIGS, key=len, reverse=True):
        if stem.startswith(name):
            return name
    if 'backbone._preconv.0.weight' in state_dict:
        return 'yolact_darknet53'
    blocks = {int(m.group(1)) for key in state_dict
              for m in [re.match(r'^backbone\.layers\.2\.(\d+)\.', key)] if m}
    if not blocks:
        raise CheckpointError(
            f'{path}: cannot tell the model config (no upstream backbone keys); pass --config')
    deformable = any('.conv_offset_mask.' in key for key in state_dict)
    depth_by_blocks = ({6: 'yolact_plus_resnet50', 23: 'yolact_plus_base'} if deformable
                       else {6: 'yolact_resnet50', 23: 'yolact_base'})
    num_blocks = max(blocks) + 1
    if num_blocks not in depth_by_blocks:
        raise CheckpointError(
            f'{path}: backbone stage 3 has {num_blocks} blocks, which matches no known config; '
            'pass --config')
    return depth_by_blocks[num_blocks]


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                           source: PathLike, allowed_missing: Iterable[str] = ()) -> None:
    """Copy ``state_dict`` into ``model``, failing on any missing, unexpected or mis-shaped key.

    Args:
        model: the network to fill.
        state_dict: tensors keyed by this project's names.
        source: the file they came from (named in errors).
        allowed_missing: key prefixes that may be absent (kept at their initial values).
    """
    expected = model.state_dict()
    allowed = tuple(allowed_missing)
    missing = sorted(k for k in expected if k not in state_dict and not k.startswith(allowed))
    unexpected = sorted(k for k in state_dict if k not in expected)
    mismatched = sorted(
        f'{k}: file {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}'
        for k in state_dict if k in expected and state_dict[k].shape != expected[k].shape)
    problems = []
    for label, keys in (('missing', missing), ('unexpected', unexpected),
                        ('wrong shape', mismatched)):
        if keys:
            shown = ', '.join(keys[:8]) + (f', ... ({len(keys)} in all)' if len(keys) > 8 else '')
            problems.append(f'{label} keys: {shown}')
    if problems:
        raise CheckpointError(f'{source} does not fit the model: ' + '; '.join(problems))
    converted = {k: v.to(expected[k].dtype) for k, v in state_dict.items()}
    model.load_state_dict(converted, strict=False)


def load_tensors_only(path: PathLike, what: str) -> object:
    """Return ``torch.load(path)`` with ``weights_only=True``: pickled code is never run.

    Raises:
        CheckpointError: in one line naming ``what`` and the file: missing, not a file
            ``torch.load`` reads, or holding pickled Python objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{what} not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        if 'Weights only load failed' in str(error):
            raise CheckpointError(
                f'cannot read {what} {path}: it holds pickled Python objects, not only '
                'tensors (a whole model?); yolact_ros loads tensors without running pickled '
                'code') from error
        raise CheckpointError(f'cannot read {what} {path}: not a checkpoint torch.load '
                              f'can read ({_error_line(error)})') from error


def read_torch_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """Read a ``.pth`` state dict without running pickled code (``weights_only=True``)."""
    state = load_tensors_only(path, 'weights file')
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f'{path} is not a state dict of tensors')
    return state


def save_checkpoint(path: PathLike, model: nn.Module, config: ModelConfig, *,
                    half: bool = False, metadata: Optional[Dict[str, str]] = None) -> Path:
    """Write the model's weights and config as safetensors, atomically.

    Args:
        path: destination ``.safetensors`` file.
        model: the network.
        config: the config that builds it (stored in the file's metadata).
        half: store floating-point tensors as float16 (half the size).
        metadata: extra string fields stored alongside (e.g. training command, metrics).
    """
    from safetensors.torch import save

    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value
    header = {'format': FORMAT_NAME, 'config': json.dumps(config.to_dict())}
    header.update(metadata or {})
    return atomic_write_bytes(path, save(tensors, metadata=header))


def atomic_write_bytes(path: PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` via a temporary file, fsync and rename.

    The temporary file is created with mode 0666, which the kernel reduces by the umask: the
    usual permissions, not mkstemp's private 0600, so weights written by one user (or a
    container's root) stay readable by the others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_name = path.parent / f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex}'
    handle = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise
    return path


def read_safetensors(path: PathLike) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Read tensors and metadata from a safetensors file, with errors naming the file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'weights file not found: {path}')
    try:
        with safe_open(str(path), framework='pt') as stream:
            metadata = stream.metadata() or {}
            tensors = {key: stream.get_tensor(key) for key in stream.keys()}
    except Exception as error:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f'cannot read weights file {path}: not a safetensors file '
                              f'({_error_line(error)})') from error
    return tensors, metadata


def read_project_safetensors(path: Path) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """:func:`read_safetensors`, refusing a file without this project's stored config."""
    tensors, metadata = read_safetensors(path)
    if metadata.get('format') != FORMAT_NAME or 'config' not in metadata:
        raise CheckpointError(f'{path} has no yolact_ros config in its metadata')
    return tensors, metadata


def with_input_size(path: PathLike, input_size: int, output: PathLike) -> Path:
    """Write a copy of a project ``.safetensors`` file that runs at another input size.

    The tensors are copied bit for bit; only the stored config's ``input_size`` changes, which
    every loader (the node, the CLI, exports) uses for inference. A multiple of 32 keeps the
    stride-8 to stride-32 feature maps tiling the input exactly; at other sizes their priors
    drift off their cells (on its validation split the demo model trained at 160 px had box
    AP 0.68 at 160 px, 0.69 at 192 and 0.45 at 200).
    """
    from safetensors.torch import save

    if input_size < 32 or input_size % 32:
        raise CheckpointError(f'input size must be a multiple of 32, got {input_size}')
    path, output = Path(path), Path(output)
    for name in (path, output):
        if name.suffix != '.safetensors':
            raise CheckpointError(f'{name}: not a .safetensors file (only a project '
                                  '.safetensors model stores its input size)')
    tensors, metadata = read_project_safetensors(path)
    config = json.loads(metadata['config'])
    config['input_size'] = input_size
    ModelConfig.from_dict(config)  # still a valid config
    try:
        return atomic_write_bytes(output, save(tensors, metadata={
            **metadata, 'config': json.dumps(config)}))
    except OSError as error:
        raise CheckpointError(f'cannot write {output}: {error.strerror}') from None


def _error_line(error: Exception) -> str:
    """Return an exception as one short line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    text = re.sub(r'\x1b\[[0-9;]*m', '', lines[0] if lines else '')[:200]
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def load_model(path: PathLike, config: Optional[Union[str, ModelConfig]] = None
               ) -> Tuple[nn.Module, ModelConfig]:
    """Build a network and fill it from a weights file.

    Args:
        path: a project ``.safetensors`` file (config read from it) or an upstream ``.pth``
            state dict (config inferred from its file name or keys unless given).
        config: config name or object. A project file's stored config is used unless a config
            object is given; a name must match the stored one. Only an upstream ``.pth`` (which
            never had attention) may lack the attention modules a config asks for: they start
            as identity. A project file must hold every key of its model, attention included.

    Returns:
        ``(model, config)``; the model is in eval mode on the CPU.
    """
    from yolact_ros.modeling import build_model

    path = Path(path)
    if path.suffix == '.safetensors':
        tensors, metadata = read_project_safetensors(path)
        stored = ModelConfig.from_dict(json.loads(metadata['config']))
        if isinstance(config, str) and config != stored.name:
            raise CheckpointError(f'{path} holds a {stored.name} model, not {config}')
        config = stored if config is None or isinstance(config, str) else config
        state_dict = tensors
        identity_gates: Tuple[str, ...] = ()
    else:
        upstream = read_torch_state_dict(path)
        if config is None:
            config = infer_upstream_config_name(path, upstream)
        config = get_config(config) if isinstance(config, str) else config
        state_dict = {upstream_to_project_key(k): v for k, v in upstream.items()}
        # Attention added on top of upstream weights starts as identity (see ChannelAttention).
        identity_gates = ('backbone.stage_attention.',)
    model = build_model(config)
    load_state_dict_strict(model, state_dict, source=path, allowed_missing=identity_gates)
    return model.eval(), config


def load_imagenet_backbone(model: nn.Module, backbone: str) -> str:
    """Fill the backbone with torchvision's ImageNet weights (downloaded on first use).

    The layers ImageNet weights cannot hold start from their own initialisation: channel
    attention (identity at init) and, in YOLACT++, each deformable conv's offset/mask branch and
    bias (torchvision's ``conv2`` has only a weight).
    """
    import torchvision

    from yolact_ros.modeling.deformable import DeformableConv2d

    if backbone not in torchvision.models.list_models(torchvision.models):
        raise CheckpointError(
            f'torchvision has no ImageNet weights for the {backbone} backbone; use --init none, '
            'or --init official with a checkpoint of this architecture')
    weights = torchvision.models.get_model_weights(backbone).IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=True, check_hash=True)
    except Exception as error:  # URLError, HTTPError, OSError, RuntimeError (hash) ...
        raise CheckpointError(
            f'cannot download ImageNet weights for {backbone} from {weights.url}: {error}. '
            'Use --init none, or put the file in the torch hub cache '
            f'({torch.hub.get_dir()}/checkpoints)') from None
    state = {k: v for k, v in state.items() if not k.startswith('fc.')}
    deformable = tuple(prefix
                       for name, layer in model.backbone.named_modules()
                       if isinstance(layer, DeformableConv2d)
                       for prefix in (f'{name}.conv_offset_mask.', f'{name}.bias'))
    load_state_dict_strict(model.backbone, state, source=weights.url,
                           allowed_missing=('stage_attention.',) + deformable)
    return weights.url


def load_official_weights(model: nn.Module, config: ModelConfig, path: str) -> str:
    """Fill ``model`` from an upstream ``.pth`` or project ``.safetensors`` checkpoint.

    Attention modules missing from the file start as identity. When the file's classes differ
    from the dataset's, the class-dependent layers (class logits, semantic head) keep their
    fresh initialisation and everything else is loaded.
    """
    source, source_config = load_model(path)
    structure = ('backbone', 'fpn_channels', 'num_prototypes', 'aspect_ratios')
    differing = [name for name in structure
                 if getattr(source_config, name) != getattr(config, name)]
    if differing:
        raise CheckpointError(
            f'{path} holds a {source_config.name} model, which differs from {config.name} in '
            + ', '.join(f'{name} ({getattr(source_config, name)} vs {getattr(config, name)})'
                        for name in differing))
    state = source.state_dict()
    allowed_missing: Tuple[str, ...] = ('backbone.stage_attention.',)
    if source_config.num_classes != config.num_classes:
        LOGGER.info('%s has %d classes, the dataset %d: class logits and semantic head start '
                    'fresh', path, source_config.num_classes, config.num_classes)
        state = {k: v for k, v in state.items() if not k.startswith(CLASS_DEPENDENT_PREFIXES)}
        allowed_missing += CLASS_DEPENDENT_PREFIXES
    load_state_dict_strict(model, state, source=path, allowed_missing=allowed_missing)
    return str(path)
