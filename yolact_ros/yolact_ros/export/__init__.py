"""Export the network (ONNX, TorchScript, TensorRT) and run it with other runtimes.

``onnx``: the network to ONNX with named inputs/outputs, its config and opset in the file's
metadata, and a parity check against eager torch. ``torchscript``: the same as a traced module.
``tensorrt``: an engine built from the ONNX file (needs ``tensorrt`` and a CUDA GPU).
``backends``: ONNX Runtime and TensorRT objects callable like the model, and
:func:`~yolact_ros.export.backends.load_segmenter`, which picks one by name.

Nothing here is imported by ``import yolact_ros``; onnx, onnxruntime and tensorrt are imported
only by the functions that use them.
"""
