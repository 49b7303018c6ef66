"""A model as ONNX (`openaml export-model ID --format onnx`, the `onnx` extra).

The graph takes one input per attribute the recipe reads, named after it, one value per
record: a NUMERIC or BINARY attribute as a double tensor [N] (NaN or infinite: missing;
BINARY: 1 true, 0 false, where OpenAML also reads yes/no words), a CATEGORICAL one as a string
tensor [N], looked up as it is ("", or a category not seen in training: missing; OpenAML
itself strips the spaces around a category first). It outputs `scores` [N, outputs] as
OpenAML scores (MULTICLASS: the classes' probabilities, in the order of the `classes`
metadata; BINARY: P(1) [N, 1]; REGRESSION: the predicted value [N, 1]) and `raw` [N, outputs],
the scores before the link function.

The recipe's transforms go into the graph where ONNX expresses them: attributes as they are,
`normalize` and `quantile_bin` of numbers, categories looked up in the vocabulary (LabelEncoder).
Text and token transforms (`ngram`, `osb`, `cartesian`, text attributes, `lowercase`,
`no_punct`) are not expressible with ONNX's standard operators: a model whose recipe outputs
one is refused with a message that names it. Linear models compute in double precision, as
OpenAML does; boosted trees go into one TreeEnsemble node (ai.onnx.ml opset 5) over the
trees' columns (ml.tree_columns), rounded to float as LightGBM reads them, with LightGBM's
double thresholds and leaves: the same comparisons and sums as LightGBM's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openaml.ml.errors import InputError, install_hint
from openaml.ml.features.rows import STANDARDIZED_LIMIT
from openaml.ml.model import Model
from openaml.ml.model_type import ModelType
from openaml.ml.moments import SAFE_MAGNITUDE
from openaml.ml.recipes.nodes import BINARY, CATEGORICAL, Attr, Node, Op
from openaml.ml.schema import AttributeType

EXTRA = "onnx"
OPSET, ML_OPSET, IR_VERSION = 21, 5, 10  # IR 10 goes with opset 21: runtimes of 2024 on read it
OUTPUTS = ("scores", "raw")


class NotExportable(InputError):
    """A model whose recipe ONNX cannot express, or whose trees it cannot."""


def export_onnx(model: Model) -> bytes:
    """The model as a serialized ONNX ModelProto."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise NotExportable(f"ONNX export needs the '{EXTRA}' extra: {install_hint(EXTRA)}") from None
    clash = sorted(set(OUTPUTS) & {a.name for a in model.schema.attributes})
    if clash:
        raise NotExportable(f"An attribute named {clash[0]!r} would clash with the graph's output of that name")
    graph = _Graph(helper, TensorProto)
    raw = _trees_raw(model, graph) if model.trees is not None else _linear_raw(model, graph)
    graph.nodes.append(helper.make_node("Identity", [_linked(model, graph, raw)], ["scores"]))
    graph.nodes.append(helper.make_node("Identity", [raw], ["raw"]))
    outputs = [helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N", len(model.bias)]) for name in OUTPUTS]
    proto = helper.make_model(
        helper.make_graph(graph.nodes, f"openaml-{model.model_type.value.lower()}", graph.inputs, outputs,
                          graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="openaml", ir_version=IR_VERSION)
    helper.set_model_props(proto, {"model_type": model.model_type.value, "algorithm": model.algorithm,
                                   "classes": json.dumps(model.classes), "recipe": model.recipe})
    onnx.checker.check_model(proto)
    data: bytes = proto.SerializeToString()
    return data


@dataclass
class _Graph:
    """The nodes, initializers and inputs of the graph being built, with unique names."""

    helper: Any
    tensors: Any
    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    _names: dict[str, str] = field(default_factory=dict)
    _count: int = 0

    def name(self, hint: str) -> str:
        """A name of the graph's own, never an attribute's (no attribute name holds '/')."""
        self._count += 1
        return f"openaml/{hint}_{self._count}"

    def node(self, op: str, inputs: list[str], hint: str, domain: str = "", **attributes: Any) -> str:
        out = self.name(hint)
        self.nodes.append(self.helper.make_node(op, inputs, [out], domain=domain, **attributes))
        return out

    def constant(self, value: np.ndarray, hint: str = "const") -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def attribute(self, name: str, attribute_type: AttributeType | None) -> str:
        """The graph input of an attribute: a column [N] reshaped to [N, 1]."""
        if name not in self._names:
            numeric = attribute_type in (AttributeType.NUMERIC, AttributeType.BINARY)
            self.inputs.append(self.helper.make_tensor_value_info(
                name, self.tensors.DOUBLE if numeric else self.tensors.STRING, ["N"]))
            column = self.node("Unsqueeze", [name, self.constant(np.array([1], np.int64))], "column")
            if numeric:  # an infinite value is missing, as OpenAML reads it
                column = self.node("Where", [self.node("IsInf", [column], "infinite"),
                                             self.constant(np.array(np.nan)), column], "finite")
            self._names[name] = column
        return self._names[name]


def _linear_raw(model: Model, graph: _Graph) -> str:
    """z = b + (numbers and yes/no values) @ W[their features] + sum of W[each category's feature]."""
    pipeline = model.pipeline
    weights = np.asarray(model.weights, np.float64)
    valued: list[str] = []
    valued_rows: list[int] = []
    found: list[str] = []  # per categorical source: feature ids [N, 1], n_features when none
    for i in range(len(pipeline.sources)):
        offset = int(pipeline.offsets[i])
        if pipeline.vocabs[i] is None:
            valued.append(_scalar(model, graph, i))
            valued_rows.append(offset)
        else:
            found.append(_category_ids(model, graph, i, offset))
    total = graph.constant(np.asarray(model.bias, np.float64).reshape(1, -1), "bias")
    if valued:
        x = graph.node("Concat", valued, "valued", axis=1) if len(valued) > 1 else valued[0]
        part = graph.node("MatMul", [x, graph.constant(weights[valued_rows], "w_valued")], "valued_z")
        total = graph.node("Add", [total, part], "z")
    if found:
        ids = graph.node("Concat", found, "ids", axis=1) if len(found) > 1 else found[0]
        extended = np.vstack([weights, np.zeros((1, weights.shape[1]))])  # row n_features: no feature
        gathered = graph.node("Gather", [graph.constant(extended, "w_categories"), ids], "gathered", axis=0)
        part = graph.node("ReduceSum", [gathered, graph.constant(np.array([1], np.int64))], "categories_z",
                          keepdims=0)
        total = graph.node("Add", [total, part], "z")
    return total


def _scalar(model: Model, graph: _Graph, i: int) -> str:
    """Source i's value as the pipeline gives it: a number standardized (missing: 0, the
    mean), a yes/no value 1 or 0 (missing: 0); [N, 1] double."""
    source = model.pipeline.sources[i]
    value = _number(model, graph, source)
    if source.kind == BINARY:
        return graph.node("Cast", [graph.node("Greater", [value, graph.constant(np.array(0.0))], "yes")],
                          "binary", to=graph.tensors.DOUBLE)
    mean, std = model.pipeline.scales[i] or (0.0, 1.0)
    scaled = _standardized(graph, value, mean, std)
    return graph.node("Where", [graph.node("IsNaN", [scaled], "missing"), graph.constant(np.array(0.0)), scaled],
                      "standardized")


def _number(model: Model, graph: _Graph, node: Node) -> str:
    """A NUMERIC or BINARY variable, [N, 1] double (NaN: missing)."""
    if isinstance(node, Attr):
        return graph.attribute(node.name, model.schema.type_of(node.name))
    if isinstance(node, Op) and node.function == "normalize":
        fitted = model.pipeline.params[node.canonical]
        return _standardized(graph, _number(model, graph, node.args[0]), float(fitted["mean"]), float(fitted["std"]))
    raise _refused(node)


def _standardized(graph: _Graph, value: str, mean: float, std: float) -> str:
    """(value - mean) / std within STANDARDIZED_LIMIT (rows.standardized); a zero std gives
    0 (and a missing value stays missing)."""
    if std <= 0:
        return graph.node("Mul", [value, graph.constant(np.array(0.0))], "flat")
    if abs(mean) > SAFE_MAGNITUDE:  # as moments.standardize: the mean divided first
        scaled = graph.node("Sub", [graph.node("Div", [value, graph.constant(np.array(std))], "divided"),
                                    graph.constant(np.array(mean / std))], "scaled")
    else:
        scaled = graph.node("Div", [graph.node("Sub", [value, graph.constant(np.array(mean))], "centered"),
                                    graph.constant(np.array(std))], "scaled")
    return graph.node("Clip", [scaled, graph.constant(np.array(-STANDARDIZED_LIMIT)),
                               graph.constant(np.array(STANDARDIZED_LIMIT))], "bounded")


def _category_ids(model: Model, graph: _Graph, i: int, offset: int, missing: int | None = None) -> str:
    """The feature id of source i's category for each record, [N, 1] int64: its place in the
    vocabulary plus `offset`; n_features (no feature) when it has none, or `missing`."""
    source, vocab = model.pipeline.sources[i], model.pipeline.vocabs[i]
    none = model.pipeline.n_features if missing is None else missing
    if source.kind != CATEGORICAL or vocab is None:
        raise _refused(source)
    keys = [str(v) for v in vocab.to_pylist()]
    values = [offset + k for k in range(len(keys))]
    if isinstance(source, Op) and source.function == "quantile_bin":
        boundaries = np.asarray(model.pipeline.params[source.canonical]["boundaries"], np.float64)
        value = _number(model, graph, source.args[0])
        above = graph.node("GreaterOrEqual", [value, graph.constant(boundaries.reshape(1, -1), "boundaries")],
                           "above")
        bins = graph.node("ReduceSum", [graph.node("Cast", [above], "above_n", to=graph.tensors.INT64),
                                        graph.constant(np.array([1], np.int64))], "bin", keepdims=1)
        table = np.full(len(boundaries) + 1, none, np.int64)  # bin -> feature id
        for key, feature in zip(keys, values, strict=True):
            if key.isdigit() and int(key) < len(table):
                table[int(key)] = feature
        ids = graph.node("Gather", [graph.constant(table, "bin_ids"), bins], "bin_feature", axis=0)
        return graph.node("Where", [graph.node("IsNaN", [value], "bin_missing"),
                                    graph.constant(np.array(none, np.int64)), ids], "bin_or_none")
    if not isinstance(source, Attr):
        raise _refused(source)
    column = graph.attribute(source.name, model.schema.type_of(source.name))
    return graph.node("LabelEncoder", [column], "category", domain="ai.onnx.ml", keys_strings=keys,
                      values_int64s=values, default_int64=none)


def _trees_raw(model: Model, graph: _Graph) -> str:
    """The trees' raw scores: the trees' columns (float values, as LightGBM reads them, held
    in doubles) into one TreeEnsemble."""
    columns = model.tree_columns()
    parts: list[str] = []
    pipeline = model.pipeline
    for i, source in enumerate(pipeline.sources):
        start, end = int(pipeline.offsets[i]), int(pipeline.offsets[i + 1])
        if pipeline.vocabs[i] is None:
            single = graph.node("Cast", [_scalar(model, graph, i)], "tree_value", to=graph.tensors.FLOAT)
            parts.append(graph.node("Cast", [single], "tree_value_double", to=graph.tensors.DOUBLE))
        elif source.kind == CATEGORICAL:
            codes = np.append(columns.code[start:end], np.nan).astype(np.float64)  # last: missing
            ids = _category_ids(model, graph, i, 0, missing=end - start)
            parts.append(graph.node("Gather", [graph.constant(codes, "codes"), ids], "tree_code", axis=0))
        else:
            raise _refused(source)
    x = graph.node("Concat", parts, "tree_columns", axis=1) if len(parts) > 1 else parts[0]
    return graph.node("TreeEnsemble", [x], "trees_raw", domain="ai.onnx.ml", **_ensemble(model, graph))


def _ensemble(model: Model, graph: _Graph) -> dict[str, Any]:
    """TreeEnsemble's attributes of LightGBM's trees (its dump): a MULTICLASS model's tree t
    scores class t mod the classes."""
    dump = model.booster().dump_model()
    outputs = len(model.bias)
    nodes: dict[str, list[Any]] = {k: [] for k in ("feature", "mode", "split", "true", "true_leaf", "false",
                                                   "false_leaf", "missing_true")}
    members: list[float] = []
    leaf_target: list[int] = []
    leaf_weight: list[float] = []
    roots: list[int] = []

    def add(tree: dict[str, Any], target: int) -> tuple[int, bool]:
        """(its index, whether a leaf) of a dumped node, added with its subtree."""
        if "leaf_value" in tree:
            leaf_target.append(target)
            leaf_weight.append(float(tree["leaf_value"]))
            return len(leaf_weight) - 1, True
        index = len(nodes["feature"])
        for key in nodes:
            nodes[key].append(0)
        nodes["feature"][index] = int(tree["split_feature"])
        if tree["decision_type"] == "==":  # categories going left
            nodes["mode"][index] = 6
            nodes["split"][index] = float("nan")
            members.extend([float(v) for v in str(tree["threshold"]).split("||")] + [float("nan")])
            nodes["missing_true"][index] = 0
        elif tree["decision_type"] == "<=":
            nodes["mode"][index] = 0
            threshold = float(tree["threshold"])
            nodes["split"][index] = threshold
            if tree.get("missing_type") == "NaN":
                nodes["missing_true"][index] = int(bool(tree.get("default_left")))
            elif tree.get("missing_type") in (None, "None"):  # LightGBM reads a NaN as 0
                nodes["missing_true"][index] = int(0.0 <= threshold)
            else:
                raise NotExportable("A tree treats zeros as missing values, which ONNX cannot express")
        else:
            raise NotExportable(f"A tree split of kind {tree['decision_type']!r} cannot be exported")
        left, left_leaf = add(tree["left_child"], target)
        right, right_leaf = add(tree["right_child"], target)
        nodes["true"][index], nodes["true_leaf"][index] = left, int(left_leaf)
        nodes["false"][index], nodes["false_leaf"][index] = right, int(right_leaf)
        return index, False

    for number, info in enumerate(dump["tree_info"]):
        structure = info["tree_structure"]
        if "leaf_value" in structure:  # a tree of one leaf: a node whose both sides are that leaf
            index = len(nodes["feature"])
            leaf, _ = add(structure, number % outputs)
            for key, value in (("feature", 0), ("mode", 0), ("split", 0.0), ("true", leaf), ("true_leaf", 1),
                               ("false", leaf), ("false_leaf", 1), ("missing_true", 0)):
                nodes[key].append(value)
            roots.append(index)
        else:
            roots.append(add(structure, number % outputs)[0])
    tensors, helper = graph.tensors, graph.helper
    attributes: dict[str, Any] = {
        "n_targets": outputs, "aggregate_function": 1, "post_transform": 0, "tree_roots": roots,
        "nodes_featureids": nodes["feature"],
        "nodes_modes": helper.make_tensor("modes", tensors.UINT8, [len(nodes["mode"])], nodes["mode"]),
        "nodes_splits": helper.make_tensor("splits", tensors.DOUBLE, [len(nodes["split"])], nodes["split"]),
        "nodes_truenodeids": nodes["true"], "nodes_trueleafs": nodes["true_leaf"],
        "nodes_falsenodeids": nodes["false"], "nodes_falseleafs": nodes["false_leaf"],
        "nodes_missing_value_tracks_true": nodes["missing_true"],
        "leaf_targetids": leaf_target,
        "leaf_weights": helper.make_tensor("leaves", tensors.DOUBLE, [len(leaf_weight)], leaf_weight),
    }
    if members:
        attributes["membership_values"] = helper.make_tensor("members", tensors.DOUBLE, [len(members)], members)
    return attributes


def _linked(model: Model, graph: _Graph, raw: str) -> str:
    """Scores from raw scores: softmax, sigmoid, or the target's scale."""
    if model.model_type == ModelType.MULTICLASS:
        return graph.node("Softmax", [raw], "probabilities", axis=1)
    if model.model_type == ModelType.BINARY:
        return graph.node("Sigmoid", [raw], "probability")
    mean, std = (float(v) for v in model.target_scale)
    if max(abs(mean), std) <= SAFE_MAGNITUDE:
        return graph.node("Add", [graph.node("Mul", [raw, graph.constant(np.array(std))], "scaled"),
                                  graph.constant(np.array(mean))], "value")
    halves = graph.node("Add", [graph.node("Mul", [raw, graph.constant(np.array(std / 2))], "scaled"),
                                graph.constant(np.array(mean / 2))], "half")  # as moments.unstandardize
    return graph.node("Mul", [halves, graph.constant(np.array(2.0))], "value")


def _refused(node: Node) -> NotExportable:
    return NotExportable(f"The recipe's output {node.canonical} cannot be expressed in ONNX (text and token "
                         f"transforms have no standard ONNX operator): export a model whose recipe leaves it out")

