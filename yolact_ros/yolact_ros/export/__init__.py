"""Export the network (ONNX, TorchScript, OpenVINO, TensorRT) and run it with other runtimes.

``onnx``: the network to ONNX with named inputs/outputs, its config and opset in the file's
metadata, and a parity check against eager torch. ``torchscript``: the same as a traced module.
``openvino``: the ONNX file as an OpenVINO IR and a CPU backend for it (f32 or bf16);
``quantize``: its int8 version by NNCF post-training quantisation on calibration images.
``tensorrt``: an engine built from the ONNX file (needs ``tensorrt`` and a CUDA GPU).
``backends``: ONNX Runtime and TensorRT objects callable like the model, and
:func:`~yolact_ros.export.backends.load_segmenter`, which picks one by name.

Nothing here is imported by ``import yolact_ros``; onnx, onnxruntime, openvino, nncf and
tensorrt are imported only by the functions that use them.
"""
