"""Model families, each built from a spec dataclass (see base.py)."""
from playground.models.base import (ACTIVATION_LABELS, ACTIVATIONS, SPECS, ModelSpec, build_model,
                                    count_parameters, parameter_table, spec_from_dict)
from playground.models.mlp import MLP, MLPSpec

__all__ = ["ACTIVATIONS", "ACTIVATION_LABELS", "SPECS", "ModelSpec", "build_model", "count_parameters",
           "parameter_table", "spec_from_dict", "MLP", "MLPSpec"]
