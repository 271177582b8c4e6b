"""A float32 copy of a model trained in mixed precision, for the export formats.

TFLite has no bfloat16 kernels (the converter stops at the first bfloat16 convolution) and ONNX
Runtime's CPU kernels are float32, and a SavedModel computing in bfloat16 is emulated, and slower
than float32, on every CPU without AMX or AVX512_BF16. The variables of a mixed-precision model are
float32 already; only the layers' compute dtype changes here. The copy's outputs differ from the
trained model's by the bfloat16 (or float16) rounding of its activations, which `mode=convert`
measures and reports beside the formats' parity with the copy.
"""

FLOAT32 = "float32"


def compute_dtype_name(model):
    """The dtype policy name the model's layers compute in ("float32", "mixed_bfloat16", ...): the most common."""
    names = [layer.dtype_policy.name for layer in model.layers]
    return max(set(names), key=names.count)


def float32_copy(model):
    """The same model and weights with every layer computing in float32 (the model itself when it already does)."""
    if all(layer.dtype_policy.name == FLOAT32 for layer in model.layers):
        return model
    copy = model.__class__.from_config(_with_float32(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _with_float32(value):
    """A layer config with each serialized dtype policy (mixed_bfloat16, mixed_float16) replaced by float32."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" and isinstance(value.get("config"), dict):
            return {**value, "config": {**value["config"], "name": FLOAT32}}
        return {key: _with_float32(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_float32(item) for item in value]
    return value
