"""runtime: run mwt modules on onnxruntime, alone or composed into one classifier. Needs no torch.

    from runtime import ComposedClassifier
    clf = ComposedClassifier.from_files(["sneaker.onnx", "bag.onnx"])
    result = clf.predict(images)   # logits, probabilities, label names
"""

from runtime.composed import ComposedClassifier, Prediction
from runtime.module_file import ModuleFile, read_module

__all__ = ["ComposedClassifier", "ModuleFile", "Prediction", "read_module"]
