"""Transfer units: which layers transfer, freeze and are scored together.

A plain network's unit is one weighted layer; a `keras.applications` network's is a
block (every layer of `block3_*`, say), so freeze depths count blocks. The head
(the layer named `HEAD`) never transfers.
"""

import re

# The name of every network's output layer: the head, which never transfers.
HEAD = "head"

# (pattern, block name template) pairs, tried in order.
BLOCK_PATTERNS = (
    (re.compile(r"^(block\d+)[a-z]?_"), r"\1"),  # VGG, Xception, EfficientNet
    (re.compile(r"^(conv\d+)_block"), r"\1"),  # ResNet, DenseNet: conv4_block2_1_conv
    (re.compile(r"^(expanded_conv(?:_\d+)?)_"), r"\1"),  # MobileNetV3
    (re.compile(r"^(block_\d+)_"), r"\1"),  # MobileNetV2: block_5_expand
    (re.compile(r"^conv_(?:dw|pw)_(\d+)"), r"conv_\1"),  # MobileNet: conv_dw_4, conv_pw_4
    (re.compile(r"^(stack\d+_block\d+)_"), r"\1"),  # KerasHub ResNet: stack1_block0_1_conv
)


def block_of(layer_name):
    """The block a layer belongs to (its own name when it is in no block)."""
    for pattern, template in BLOCK_PATTERNS:
        match = pattern.match(layer_name)
        if match:
            return match.expand(template)
    return layer_name


def transfer_units(layer_names):
    """Groups layer names (in model order) into transfer units (blocks).

    Args:
        layer_names: list of str. Layers with weights, in model order.

    Returns:
        A list of `(unit_name, [layer names])`, in model order.

    Example:

    >>> transfer_units(["block1_conv1", "block1_conv2", "block2_conv1", "fc1"])
    [('block1', ['block1_conv1', 'block1_conv2']), ('block2', ['block2_conv1']), ('fc1', ['fc1'])]
    """
    units = []
    for name in layer_names:
        block = block_of(name)
        if units and units[-1][0] == block:
            units[-1][1].append(name)
        else:
            units.append((block, [name]))
    return units


def is_graph_model(model):
    """Whether `model` has a layer graph (functional or Sequential), unlike a
    subclassed `keras.Model`, whose `call()` is opaque."""
    return getattr(model, "inputs", None) is not None


def trunk_layers(model):
    """Names of the layers with weights, in model order, except the head."""
    return [layer.name for layer in model.layers if layer.weights and layer.name != HEAD]


def all_layers(model):
    """Every layer of `model`, those of nested models included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)
