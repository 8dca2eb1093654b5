"""Inference fast paths keep the network's outputs: BatchNorm folding and channels-last."""

import copy

import pytest
import torch
from torch import nn

from yolact_ros.checkpoint import load_model
from yolact_ros.config import PostprocessConfig
from yolact_ros.export.onnx import example_input, OUTPUT_NAMES
from yolact_ros.inference import fold_batchnorm, Segmenter


@pytest.fixture(scope='module')
def model_and_input(tiny_weights):
    model, config = load_model(tiny_weights)
    # Non-trivial BatchNorm statistics, so that folding has something to get wrong.
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(channels, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(channels, generator=generator) * 0.1)
    return model.eval(), example_input(config, batch_size=2)


def test_folding_removes_every_batchnorm_and_keeps_the_outputs(model_and_input):
    model, images = model_and_input
    folded = fold_batchnorm(copy.deepcopy(model))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 20  # ResNet-18
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        reference, ours = model(images), folded(images)
    for name in OUTPUT_NAMES:
        scale = reference[name].abs().max()
        assert (ours[name] - reference[name]).abs().max() <= 1e-4 * scale, name


def test_channels_last_keeps_the_outputs(model_and_input):
    model, images = model_and_input
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    assert fast.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        reference, ours = model(images), fast(images)
    for name in OUTPUT_NAMES:
        assert (ours[name] - reference[name]).abs().max() < 1e-4, name


def test_segmenter_fast_paths_give_the_plain_segmenters_detections(tiny_weights):
    image = torch.randint(0, 255, (60, 80, 3), generator=torch.Generator().manual_seed(0),
                          dtype=torch.uint8).numpy()
    postprocess = PostprocessConfig(score_threshold=0.0)
    plain = Segmenter.from_weights(tiny_weights, device='cpu', fold_bn=False,
                                   postprocess=postprocess)(image)
    fast = Segmenter.from_weights(tiny_weights, device='cpu', fold_bn=True, channels_last=True,
                                  postprocess=postprocess)(image)
    assert len(fast) == len(plain) == 100
    assert (fast.boxes == plain.boxes).all()
    assert abs(fast.scores - plain.scores).max() < 1e-5
    assert (fast.masks == plain.masks).mean() > 0.9999


def test_compiled_graphs_build_no_priors(model_and_input):
    """Priors come from the eager cache, not from tensors created inside a compiled graph.

    Inductor's CUDA-graph mode failed on them (CPU constructors partly moved to the GPU).
    """
    model, images = model_and_input
    graphs = []

    def record(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    compiled = torch.compile(copy.deepcopy(model), backend=record)
    with torch.no_grad():
        outputs, reference = compiled(images), model(images)
    assert graphs
    targets = [str(node.target) for graph in graphs for node in graph.graph.nodes]
    assert not [target for target in targets if 'arange' in target or 'meshgrid' in target]
    assert torch.equal(outputs['priors'], reference['priors'])
    torch.testing.assert_close(outputs['conf'], reference['conf'])
