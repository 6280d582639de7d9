"""Model families, each built from a spec dataclass (see base.py)."""
from playground.models.base import (ACTIVATION_LABELS, ACTIVATIONS, SPECS, ModelSpec, build_model,
                                    count_parameters, parameter_table, spec_from_dict)
from playground.models.mlp import MLP, MLPSpec

__all__ = ["ACTIVATIONS", "ACTIVATION_LABELS", "SPECS", "ModelSpec", "build_model", "count_parameters",
           "parameter_table", "spec_from_dict", "MLP", "MLPSpec"]
from playground.models.rnn import RNNSpec  # noqa: E402
from playground.models.transformer import TransformerSpec  # noqa: E402
from playground.models.hybrid import HybridSpec, TokenCNNSpec  # noqa: E402
from playground.models.cnn import CNNSpec, LogisticRegressionSpec  # noqa: E402
from playground.models.esm_head import ESMHeadSpec  # noqa: E402
