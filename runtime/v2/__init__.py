"""Generated gRPC stubs of the Open Inference Protocol: KServe's `grpc_predict_v2.proto` (package
`inference`, service `GRPCInferenceService`), unchanged but for its file name, which puts the
generated imports inside this package. Do not edit `grpc_predict_v2_pb2*.py`; regenerate them.

Generated with grpcio-tools 1.75.1, whose protoc writes protobuf 6.31.1 gencode: it needs
protobuf >= 6.31.1 at run time (7.x included; the `serve` extra says so) and grpcio >= 1.75.1.
A newer grpcio-tools would raise both floors (1.85 writes 7.35 gencode, refused by protobuf 6).
To regenerate, from the repository root, with the proto saved as runtime/v2/grpc_predict_v2.proto
(https://github.com/kserve/kserve, docs/predict-api/v2/grpc_predict_v2.proto, Apache-2.0):

    python -m venv /tmp/protoc && /tmp/protoc/bin/pip install grpcio-tools==1.75.1
    /tmp/protoc/bin/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. \\
        runtime/v2/grpc_predict_v2.proto

(These were built from the same file's descriptor as the kserve 0.21 wheel ships it, via
`--descriptor_set_in`, so they carry no comments.) Import them only through `runtime.v2_grpc`,
in the serving process: tritonclient's stubs define the same `inference.*` names.
"""
